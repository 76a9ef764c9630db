use std::net::IpAddr;
use std::sync::Arc;

use super::*;
use crate::audit::AuditQuery;
use crate::audit::tests::test_store;
use crate::clock::ManualClock;
use crate::device_key::tests::p256_signing_key;

/// 2025-06-15T12:00:00Z, a Sunday.
const NOON_UTC: i64 = 1_749_988_800;
const HOUR: i64 = 3600;

fn did(seed: u8) -> Did {
    Did::from_p256(p256_signing_key(seed).verifying_key())
}

fn lan() -> IpAddr {
    "192.168.1.20".parse().unwrap()
}

fn context(role: Role, action: Action, rating: Option<ContentRating>) -> RequestContext {
    RequestContext {
        user: Some((did(1), role)),
        device: Some(DeviceContext {
            did: did(2),
            approved: true,
        }),
        action,
        resource: "item-42".to_owned(),
        rating,
        source: lan(),
    }
}

fn evaluate(context: &RequestContext, now: i64) -> Decision {
    Policy::household_default(0).evaluate(context, now)
}

#[test]
fn child_cannot_play_r_rated_item() {
    let decision = evaluate(
        &context(Role::Child, Action::PlayItem, Some(ContentRating::R)),
        NOON_UTC,
    );

    assert!(!decision.allowed);
    assert_eq!(
        decision.reason,
        "rule 'children' allows ratings up to age 7; R is for age 17"
    );
}

#[test]
fn child_rating_limit_applies_to_every_rating() {
    use ContentRating::*;
    for (rating, allowed) in [
        (G, true),
        (TvY, true),
        (TvY7, true),
        (TvG, true),
        (Pg, false),
        (TvPg, false),
        (Pg13, false),
        (Tv14, false),
        (R, false),
        (TvMa, false),
        (Nc17, false),
        (Unrated, false),
    ] {
        for action in [Action::ViewItem, Action::PlayItem] {
            let decision = evaluate(&context(Role::Child, action, Some(rating)), NOON_UTC);
            assert_eq!(
                decision.allowed, allowed,
                "{rating} {action}: {}",
                decision.reason
            );
        }
    }
}

#[test]
fn missing_rating_counts_as_unrated() {
    let decision = evaluate(&context(Role::Teen, Action::PlayItem, None), NOON_UTC);

    assert!(!decision.allowed);
    assert!(
        decision.reason.contains("unrated is for age 18"),
        "{}",
        decision.reason
    );
    assert!(evaluate(&context(Role::Adult, Action::PlayItem, None), NOON_UTC).allowed);
}

#[test]
fn teen_within_limits_allowed() {
    let decision = evaluate(
        &context(Role::Teen, Action::PlayItem, Some(ContentRating::Pg13)),
        NOON_UTC,
    );

    assert!(decision.allowed, "{}", decision.reason);
    assert_eq!(
        decision.reason,
        "rule 'teens' allows play_item for role teen"
    );
}

#[test]
fn teen_after_curfew_denied() {
    let late = NOON_UTC + 11 * HOUR; // 23:00 UTC

    let decision = evaluate(
        &context(Role::Teen, Action::PlayItem, Some(ContentRating::G)),
        late,
    );

    assert!(!decision.allowed);
    assert_eq!(
        decision.reason,
        "rule 'teens' allows this only 06:00–22:00 local time; it is 23:00"
    );
}

#[test]
fn curfew_uses_household_offset() {
    // 20:30 UTC is 22:30 at UTC+02:00 (curfew) but 15:30 at UTC-05:00.
    let at = NOON_UTC + 8 * HOUR + 30 * 60;
    let teen = context(Role::Teen, Action::PlayItem, Some(ContentRating::G));

    assert!(!Policy::household_default(120).evaluate(&teen, at).allowed);
    assert!(Policy::household_default(-300).evaluate(&teen, at).allowed);
}

#[test]
fn curfew_edges() {
    let teen = context(Role::Teen, Action::BrowseLibrary, None);
    let midnight = NOON_UTC - 12 * HOUR;

    for (minute, allowed) in [
        (5 * 60 + 59, false),
        (6 * 60, true),
        (21 * 60 + 59, true),
        (22 * 60, false),
        (0, false),
    ] {
        let decision = evaluate(&teen, midnight + minute * 60);
        assert_eq!(
            decision.allowed, allowed,
            "minute {minute}: {}",
            decision.reason
        );
    }
}

#[test]
fn window_across_midnight() {
    let night = TimeWindow::hours(22, 0, 6, 0);

    assert!(night.contains(23 * 60));
    assert!(night.contains(0));
    assert!(night.contains(5 * 60 + 59));
    assert!(!night.contains(6 * 60));
    assert!(!night.contains(12 * 60));
}

#[test]
fn unknown_device_denied() {
    let request = RequestContext {
        device: None,
        ..context(Role::Admin, Action::BrowseLibrary, None)
    };

    let decision = evaluate(&request, NOON_UTC);

    assert!(!decision.allowed);
    assert!(
        decision.reason.starts_with("unknown device"),
        "{}",
        decision.reason
    );
}

#[test]
fn unapproved_device_denied() {
    let request = RequestContext {
        device: Some(DeviceContext {
            did: did(2),
            approved: false,
        }),
        ..context(Role::Admin, Action::BrowseLibrary, None)
    };

    let decision = evaluate(&request, NOON_UTC);

    assert!(!decision.allowed);
    assert!(
        decision.reason.ends_with("is not approved"),
        "{}",
        decision.reason
    );
}

#[test]
fn missing_user_denied() {
    let request = RequestContext {
        user: None,
        ..context(Role::Admin, Action::BrowseLibrary, None)
    };

    assert_eq!(evaluate(&request, NOON_UTC).reason, "no authenticated user");
}

#[test]
fn admin_only_actions_denied_to_other_roles() {
    for action in [
        Action::ManageUsers,
        Action::ManageDevices,
        Action::ManagePolicy,
        Action::ReadAudit,
    ] {
        for role in [Role::Adult, Role::Teen, Role::Child] {
            let decision = evaluate(&context(role, action, None), NOON_UTC);
            assert!(!decision.allowed, "{role} {action}");
            assert_eq!(
                decision.reason,
                format!("no rule allows {action} for role {role}")
            );
        }
        assert!(
            evaluate(&context(Role::Admin, action, None), NOON_UTC).allowed,
            "admin {action}"
        );
    }
}

#[test]
fn requests_from_outside_the_lan_denied() {
    let request = RequestContext {
        source: "203.0.113.9".parse().unwrap(),
        ..context(Role::Admin, Action::ManageUsers, None)
    };

    let decision = evaluate(&request, NOON_UTC);

    assert!(!decision.allowed);
    assert_eq!(
        decision.reason,
        "rule 'admins' does not allow source address 203.0.113.9"
    );
}

#[test]
fn device_list_restricts_rule() {
    let mut policy = Policy::household_default(0);
    policy.rules[0].devices = Some(vec![did(3)]);

    let from_listed = RequestContext {
        device: Some(DeviceContext {
            did: did(3),
            approved: true,
        }),
        ..context(Role::Admin, Action::ManagePolicy, None)
    };
    let from_other = context(Role::Admin, Action::ManagePolicy, None);

    assert!(policy.evaluate(&from_listed, NOON_UTC).allowed);
    let decision = policy.evaluate(&from_other, NOON_UTC);
    assert!(!decision.allowed);
    assert!(
        decision.reason.contains("does not list device"),
        "{}",
        decision.reason
    );
}

#[test]
fn empty_policy_denies_everything() {
    let policy = Policy {
        utc_offset_minutes: 0,
        rules: Vec::new(),
    };

    for role in Role::ALL {
        for action in Action::ALL {
            let decision =
                policy.evaluate(&context(role, action, Some(ContentRating::G)), NOON_UTC);
            assert!(!decision.allowed, "{role} {action}");
        }
    }
}

#[test]
fn later_rule_overrides_failed_condition() {
    let mut policy = Policy::household_default(0);
    let mut weekend_movie = policy.rules[2].clone();
    weekend_movie.name = "teen movie night".to_owned();
    weekend_movie.max_rating_age = Some(17);
    weekend_movie.hours = Some(TimeWindow::hours(19, 0, 23, 0));
    policy.rules.push(weekend_movie);
    let r_rated = context(Role::Teen, Action::PlayItem, Some(ContentRating::R));

    assert!(policy.evaluate(&r_rated, NOON_UTC + 8 * HOUR).allowed);
    let decision = policy.evaluate(&r_rated, NOON_UTC);
    assert!(!decision.allowed);
    // The first matching rule's failure is reported.
    assert!(
        decision.reason.starts_with("rule 'teens'"),
        "{}",
        decision.reason
    );
}

#[test]
fn every_decision_is_audited_with_its_reason() {
    let (_dir, store) = test_store();
    let clock = Arc::new(ManualClock::new(NOON_UTC));
    let engine = PolicyEngine::new(Policy::household_default(0), AuditLog::new(store), clock);
    let requests = [
        context(Role::Child, Action::PlayItem, Some(ContentRating::R)),
        context(Role::Child, Action::PlayItem, Some(ContentRating::G)),
        context(Role::Adult, Action::ManageUsers, None),
        RequestContext {
            device: None,
            ..context(Role::Admin, Action::ReadAudit, None)
        },
        context(Role::Admin, Action::ReadAudit, None),
    ];

    let decisions: Vec<Decision> = requests
        .iter()
        .map(|request| engine.decide(request).unwrap())
        .collect();

    let page = engine.audit().query(&AuditQuery::default()).unwrap();
    assert_eq!(page.records.len(), requests.len());
    for ((request, decision), record) in requests
        .iter()
        .zip(&decisions)
        .zip(page.records.iter().rev())
    {
        assert_eq!(record.event.allowed, decision.allowed);
        assert_eq!(record.event.reason, decision.reason);
        assert_eq!(record.event.action, request.action.as_str());
        assert_eq!(record.event.resource, "item-42");
        assert_eq!(record.event.time, NOON_UTC);
        assert_eq!(record.event.source, lan());
        assert_eq!(
            record.event.device,
            request.device.as_ref().map(|device| device.did.to_string())
        );
        assert_eq!(record.event.subject, Some(did(1).to_string()));
    }
    assert_eq!(
        decisions
            .iter()
            .map(|decision| decision.allowed)
            .collect::<Vec<_>>(),
        [false, true, false, false, true]
    );
}

#[test]
fn admins_query_denials_by_subject() {
    let (_dir, store) = test_store();
    let clock = Arc::new(ManualClock::new(NOON_UTC));
    let engine = PolicyEngine::new(
        Policy::household_default(0),
        AuditLog::new(store),
        clock.clone(),
    );
    let child = RequestContext {
        user: Some((did(9), Role::Child)),
        ..context(Role::Child, Action::PlayItem, Some(ContentRating::R))
    };
    engine.decide(&child).unwrap();
    clock.advance(60);
    engine
        .decide(&context(
            Role::Adult,
            Action::PlayItem,
            Some(ContentRating::R),
        ))
        .unwrap();

    let denied = engine
        .audit()
        .query(&AuditQuery {
            subject: Some(did(9).to_string()),
            allowed: Some(false),
            ..Default::default()
        })
        .unwrap();

    assert_eq!(denied.records.len(), 1);
    assert!(denied.records[0].event.reason.contains("up to age 7"));
}

#[test]
fn failed_audit_write_fails_the_decision() {
    let (_dir, store) = test_store();
    store
        .get()
        .unwrap()
        .execute_batch("DROP TABLE audit;")
        .unwrap();
    let engine = PolicyEngine::new(
        Policy::household_default(0),
        AuditLog::new(store),
        Arc::new(ManualClock::new(NOON_UTC)),
    );

    let result = engine.decide(&context(Role::Admin, Action::ReadAudit, None));

    assert!(result.is_err(), "{result:?}");
}

#[test]
fn policy_change_applies_to_next_decision() {
    let (_dir, store) = test_store();
    let engine = PolicyEngine::new(
        Policy::household_default(0),
        AuditLog::new(store),
        Arc::new(ManualClock::new(NOON_UTC)),
    );
    let adult = context(Role::Adult, Action::PlayItem, Some(ContentRating::R));
    assert!(engine.decide(&adult).unwrap().allowed);

    engine.set_policy(Policy {
        utc_offset_minutes: 0,
        rules: Vec::new(),
    });

    assert!(!engine.decide(&adult).unwrap().allowed);
}
