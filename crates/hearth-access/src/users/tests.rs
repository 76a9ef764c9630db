use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth_pqc::sign::{HybridSigner as _, HybridSigningKey};
use hearth_store::Store;

use super::*;
use crate::audit::AuditQuery;
use crate::clock::ManualClock;
use crate::device_key::DeviceKey;
use crate::device_key::tests::p256_signing_key;
use crate::password::PasswordParams;

const START: i64 = 1_750_000_000;
const PASSWORD: &str = "correct horse battery staple";

struct Fixture {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    revocations: Arc<RevocationRegistry>,
    users: UserStore,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(START));
        let revocations = Arc::new(RevocationRegistry::new());
        let users = open_users(
            &dir,
            &clock,
            &revocations,
            PasswordParams::INSECURE_FOR_TESTS,
        );
        Self {
            dir,
            clock,
            revocations,
            users,
        }
    }

    /// Opens a second store on the same file, as after a restart.
    fn reopen(&self) -> UserStore {
        open_users(
            &self.dir,
            &self.clock,
            &Arc::new(RevocationRegistry::new()),
            PasswordParams::INSECURE_FOR_TESTS,
        )
    }

    fn add_user(&self, name: &str, role: Role, seed: u8) -> User {
        let new = NewUser {
            name,
            did: did(seed),
            role,
            password: Some(PASSWORD),
        };
        self.users.create_user(&new).unwrap()
    }
}

fn open_users(
    dir: &tempfile::TempDir,
    clock: &Arc<ManualClock>,
    revocations: &Arc<RevocationRegistry>,
    params: PasswordParams,
) -> UserStore {
    let store = Store::open(&dir.path().join("hearth.sqlite3")).unwrap();
    let hasher = PasswordHasher::new(params, 2).unwrap();
    UserStore::open(store, hasher, clock.clone(), revocations.clone()).unwrap()
}

fn did(seed: u8) -> Did {
    Did::from_p256(p256_signing_key(seed).verifying_key())
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn first_admin_created_only_once() {
    let fixture = Fixture::new();

    let admin = fixture
        .users
        .create_first_admin("Alex", did(1), PASSWORD)
        .unwrap();
    let err = fixture
        .users
        .create_first_admin("Mallory", did(2), PASSWORD)
        .unwrap_err();

    assert_eq!(admin.role, Role::Admin);
    assert!(matches!(err, UserError::AlreadySetUp), "{err}");
    assert_eq!(fixture.users.users().unwrap(), vec![admin]);
}

#[test]
fn names_are_unique_regardless_of_case() {
    let fixture = Fixture::new();
    fixture.add_user("Alex", Role::Adult, 1);

    let new = NewUser {
        name: "ALEX",
        did: did(2),
        role: Role::Adult,
        password: Some(PASSWORD),
    };
    let err = fixture.users.create_user(&new).unwrap_err();

    assert!(matches!(err, UserError::NameTaken { .. }), "{err}");
}

#[test]
fn dids_are_unique() {
    let fixture = Fixture::new();
    fixture.add_user("Alex", Role::Adult, 1);

    let new = NewUser {
        name: "Sam",
        did: did(1),
        role: Role::Adult,
        password: Some(PASSWORD),
    };
    let err = fixture.users.create_user(&new).unwrap_err();

    assert!(matches!(err, UserError::DidTaken { .. }), "{err}");
}

#[test]
fn invalid_names_rejected() {
    let fixture = Fixture::new();
    let long = "x".repeat(65);

    for name in ["", " Alex", "Alex ", "Al\nex", "Al\u{0}ex", long.as_str()] {
        let new = NewUser {
            name,
            did: did(1),
            role: Role::Adult,
            password: Some(PASSWORD),
        };
        let err = fixture.users.create_user(&new).unwrap_err();
        assert!(
            matches!(err, UserError::InvalidName { .. }),
            "{name:?}: {err}"
        );
    }
}

#[test]
fn short_password_rejected_at_creation() {
    let fixture = Fixture::new();
    let new = NewUser {
        name: "Alex",
        did: did(1),
        role: Role::Adult,
        password: Some("hunter2"),
    };

    let err = fixture.users.create_user(&new).unwrap_err();

    assert!(
        matches!(err, UserError::Password(PasswordError::TooShort { .. })),
        "{err}"
    );
}

#[test]
fn correct_password_logs_in_case_insensitively() {
    let fixture = Fixture::new();
    let alex = fixture.add_user("Alex", Role::Adult, 1);

    assert_eq!(
        fixture
            .users
            .login("Alex", PASSWORD, ip("192.168.1.5"))
            .unwrap(),
        alex
    );
    assert_eq!(
        fixture
            .users
            .login("alex", PASSWORD, ip("192.168.1.5"))
            .unwrap(),
        alex
    );
}

#[test]
fn unknown_name_gives_same_error() {
    let fixture = Fixture::new();
    fixture.add_user("Alex", Role::Adult, 1);

    let wrong = fixture
        .users
        .login("Alex", "wrong password here", ip("192.168.1.5"))
        .unwrap_err();
    let unknown = fixture
        .users
        .login("Nobody", PASSWORD, ip("192.168.1.6"))
        .unwrap_err();

    assert!(matches!(wrong, LoginError::InvalidCredentials), "{wrong}");
    assert!(
        matches!(unknown, LoginError::InvalidCredentials),
        "{unknown}"
    );
    assert_eq!(wrong.to_string(), unknown.to_string());
}

#[test]
fn unknown_name_is_throttled_like_a_real_one() {
    let fixture = Fixture::new();
    fixture.add_user("Alex", Role::Adult, 1);

    let mut outcomes = Vec::new();
    for name in ["Alex", "Nobody"] {
        let source = if name == "Alex" {
            ip("10.0.0.1")
        } else {
            ip("10.0.0.2")
        };
        fixture.clock.set(START);
        let mut trace = Vec::new();
        for _ in 0..8 {
            let err = fixture
                .users
                .login(name, "wrong password here", source)
                .unwrap_err();
            trace.push(std::mem::discriminant(&err));
            fixture.clock.advance(10);
        }
        outcomes.push(trace);
    }

    assert_eq!(outcomes[0], outcomes[1]);
}

#[test]
fn disabled_and_passwordless_login_rejected() {
    let fixture = Fixture::new();
    fixture.add_user("Admin", Role::Admin, 1);
    let alex = fixture.add_user("Alex", Role::Adult, 2);
    let passkey_only = NewUser {
        name: "Kim",
        did: did(3),
        role: Role::Adult,
        password: None,
    };
    fixture.users.create_user(&passkey_only).unwrap();

    fixture.users.disable_user(alex.id).unwrap();

    let err = fixture
        .users
        .login("Alex", PASSWORD, ip("10.0.0.1"))
        .unwrap_err();
    assert!(matches!(err, LoginError::InvalidCredentials), "{err}");
    let err = fixture.users.login("Kim", "", ip("10.0.0.2")).unwrap_err();
    assert!(matches!(err, LoginError::InvalidCredentials), "{err}");
}

#[test]
fn ten_thousand_guesses_never_succeed() {
    let fixture = Fixture::new();
    fixture.add_user("Alex", Role::Adult, 1);
    let attacker = ip("192.168.1.66");

    let mut checked = Vec::new();
    let mut locked = 0;
    for guess in 0..10_000 {
        match fixture
            .users
            .login("Alex", &format!("guess number {guess:05}"), attacker)
        {
            Ok(user) => panic!("guess {guess} logged in as {user:?}"),
            Err(LoginError::InvalidCredentials) => checked.push(fixture.clock.now() - START),
            Err(LoginError::Locked { .. }) => locked += 1,
            Err(LoginError::Throttled { .. }) => {}
            Err(other) => panic!("guess {guess}: {other}"),
        }
        // One guess per second: 10,000 guesses over 2 h 46 min.
        fixture.clock.advance(1);
    }

    // Five checks with 1, 2, 4 and 8 s back-off, then lockouts of 15, 30
    // and 60 minutes: 8 password checks in total.
    assert_eq!(checked, [0, 1, 3, 7, 15, 915, 2715, 6315]);
    assert!(locked > 9_900, "{locked} attempts were locked out");
}

#[test]
fn patient_attacker_gets_few_guesses() {
    let fixture = Fixture::new();
    fixture.add_user("Alex", Role::Adult, 1);
    let attacker = ip("192.168.1.66");

    // The attacker waits out the retry_after of each rejection, for 7 days.
    let mut checks_per_day = [0u32; 7];
    while fixture.clock.now() < START + 7 * 86_400 {
        let day = ((fixture.clock.now() - START) / 86_400) as usize;
        match fixture.users.login("Alex", "not the password", attacker) {
            Err(LoginError::InvalidCredentials) => checks_per_day[day] += 1,
            Err(LoginError::Locked { retry_after } | LoginError::Throttled { retry_after }) => {
                assert!(retry_after > 0);
                fixture.clock.advance(retry_after);
            }
            other => panic!("{other:?}"),
        }
    }

    // 5 quick guesses, then one after each lockout of 15 min to 16 h. The
    // count starts over 24 h after the last failure, so about 6 a day.
    assert_eq!(checks_per_day[0], 11, "{checks_per_day:?}");
    assert!(
        checks_per_day.iter().sum::<u32>() <= 42,
        "{checks_per_day:?}"
    );
}

#[test]
fn lockout_rejects_even_the_correct_password() {
    let fixture = Fixture::new();
    fixture.add_user("Alex", Role::Adult, 1);
    for _ in 0..5 {
        let _ = fixture
            .users
            .login("Alex", "wrong password here", ip("10.0.0.1"));
        fixture.clock.advance(60);
    }

    let err = fixture
        .users
        .login("Alex", PASSWORD, ip("10.0.0.2"))
        .unwrap_err();

    assert!(
        matches!(err, LoginError::Locked { retry_after } if retry_after > 800),
        "{err}"
    );
}

#[test]
fn lockout_survives_restart() {
    let fixture = Fixture::new();
    fixture.add_user("Alex", Role::Adult, 1);
    for _ in 0..5 {
        let _ = fixture
            .users
            .login("Alex", "wrong password here", ip("10.0.0.1"));
        fixture.clock.advance(60);
    }

    let restarted = fixture.reopen();
    let err = restarted
        .login("Alex", PASSWORD, ip("10.0.0.1"))
        .unwrap_err();

    assert!(matches!(err, LoginError::Locked { .. }), "{err}");
}

#[test]
fn lockout_ends_and_success_resets_the_count() {
    let fixture = Fixture::new();
    fixture.add_user("Alex", Role::Adult, 1);
    for _ in 0..5 {
        let _ = fixture
            .users
            .login("Alex", "wrong password here", ip("10.0.0.1"));
        fixture.clock.advance(60);
    }

    fixture.clock.advance(15 * 60);
    fixture
        .users
        .login("Alex", PASSWORD, ip("10.0.0.1"))
        .unwrap();

    // After a success, one mistake backs the account off 1 s, not into
    // another lockout. (A new source, because 10.0.0.1 keeps its failures.)
    let _ = fixture
        .users
        .login("Alex", "wrong password here", ip("10.0.0.2"));
    let err = fixture
        .users
        .login("Alex", PASSWORD, ip("10.0.0.2"))
        .unwrap_err();
    assert!(
        matches!(err, LoginError::Throttled { retry_after: 1 }),
        "{err}"
    );
    fixture.clock.advance(1);
    fixture
        .users
        .login("Alex", PASSWORD, ip("10.0.0.2"))
        .unwrap();
}

#[test]
fn spraying_many_names_locks_the_source() {
    let fixture = Fixture::new();
    fixture.add_user("Alex", Role::Adult, 1);
    let sprayer = ip("192.168.1.66");

    let mut checks = 0;
    for index in 0..200 {
        if let Err(LoginError::InvalidCredentials) =
            fixture
                .users
                .login(&format!("user{index}"), "Winter2025!!", sprayer)
        {
            checks += 1;
        }
        fixture.clock.advance(61);
    }

    // 20 names, then one after each source lockout of 15, 30 and 60 minutes.
    assert_eq!(checks, 23);
    let err = fixture.users.login("Alex", PASSWORD, sprayer).unwrap_err();
    assert!(matches!(err, LoginError::Locked { .. }), "{err}");
    // Another device on the LAN is not affected.
    fixture
        .users
        .login("Alex", PASSWORD, ip("192.168.1.7"))
        .unwrap();
}

#[test]
fn parallel_guesses_are_counted_before_checking() {
    let fixture = Arc::new(Fixture::new());
    fixture.add_user("Alex", Role::Adult, 1);

    let threads: Vec<_> = (0..8)
        .map(|thread| {
            let fixture = fixture.clone();
            std::thread::spawn(move || {
                let source = ip(&format!("10.0.1.{thread}"));
                matches!(
                    fixture.users.login("Alex", "wrong password here", source),
                    Err(LoginError::InvalidCredentials)
                )
            })
        })
        .collect();
    let checked = threads
        .into_iter()
        .map(|thread| thread.join().unwrap())
        .filter(|&checked| checked)
        .count();

    // Same second, same account: only the first attempt passes the back-off.
    assert_eq!(checked, 1);
}

#[test]
fn unknown_name_costs_a_full_verification() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(START));
    // Costly enough that a skipped Argon2 run would show.
    let params = PasswordParams {
        memory_kib: 8 * 1024,
        iterations: 2,
        parallelism: 1,
    };
    let users = open_users(&dir, &clock, &Arc::new(RevocationRegistry::new()), params);
    users
        .create_user(&NewUser {
            name: "Alex",
            did: did(1),
            role: Role::Adult,
            password: Some(PASSWORD),
        })
        .unwrap();

    let time = |name: &str, index: u32| {
        clock.advance(3600);
        let started = Instant::now();
        let _ = users.login(name, "wrong password here", ip(&format!("10.0.2.{index}")));
        started.elapsed()
    };
    let mut known: Vec<Duration> = (0..5).map(|index| time("Alex", index)).collect();
    let mut unknown: Vec<Duration> = (0..5).map(|index| time("Nobody", index + 10)).collect();
    known.sort();
    unknown.sort();

    // Medians within a factor of 3; a missing dummy verification would
    // make the unknown case hundreds of times faster.
    let (known, unknown) = (known[2].as_secs_f64(), unknown[2].as_secs_f64());
    assert!(
        unknown > known / 3.0 && unknown < known * 3.0,
        "known {known:.4} s, unknown {unknown:.4} s"
    );
}

#[test]
fn outdated_hash_replaced_on_login() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(START));
    let revocations = Arc::new(RevocationRegistry::new());
    let old = open_users(
        &dir,
        &clock,
        &revocations,
        PasswordParams {
            memory_kib: 128,
            iterations: 1,
            parallelism: 1,
        },
    );
    old.create_user(&NewUser {
        name: "Alex",
        did: did(1),
        role: Role::Adult,
        password: Some(PASSWORD),
    })
    .unwrap();

    let current = open_users(
        &dir,
        &clock,
        &revocations,
        PasswordParams::INSECURE_FOR_TESTS,
    );
    current.login("Alex", PASSWORD, ip("10.0.0.1")).unwrap();

    let conn = current.store.get().unwrap();
    let hash: String = conn
        .query_row(
            "SELECT password_hash FROM users WHERE name = 'Alex'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{hash}");
}

#[test]
fn login_attempts_are_audited() {
    let fixture = Fixture::new();
    let alex = fixture.add_user("Alex", Role::Adult, 1);

    fixture
        .users
        .login("Alex", "wrong password here", ip("10.0.0.1"))
        .unwrap_err();
    fixture
        .users
        .login("Alex", PASSWORD, ip("10.0.0.1"))
        .unwrap_err();
    fixture.clock.advance(1);
    fixture
        .users
        .login("Alex", PASSWORD, ip("10.0.0.1"))
        .unwrap();

    let page = fixture.users.audit().query(&AuditQuery::default()).unwrap();
    let reasons: Vec<(&str, bool)> = page
        .records
        .iter()
        .map(|r| (r.event.reason.as_str(), r.event.allowed))
        .collect();
    assert_eq!(
        reasons,
        [
            ("password verified", true),
            ("login throttled", false),
            ("invalid name or password", false)
        ]
    );
    assert_eq!(
        page.records[0].event.subject.as_deref(),
        Some(alex.did.as_str())
    );
    assert!(
        page.records
            .iter()
            .all(|r| r.event.action == "login" && r.event.source == ip("10.0.0.1"))
    );
}

#[test]
fn last_admin_cannot_be_disabled_or_demoted() {
    let fixture = Fixture::new();
    let admin = fixture
        .users
        .create_first_admin("Alex", did(1), PASSWORD)
        .unwrap();

    assert!(matches!(
        fixture.users.disable_user(admin.id),
        Err(UserError::LastAdmin { .. })
    ));
    assert!(matches!(
        fixture.users.set_role(admin.id, Role::Adult),
        Err(UserError::LastAdmin { .. })
    ));

    let second = fixture.add_user("Sam", Role::Admin, 2);
    fixture.users.set_role(admin.id, Role::Adult).unwrap();
    assert!(matches!(
        fixture.users.disable_user(second.id),
        Err(UserError::LastAdmin { .. })
    ));
}

#[test]
fn device_pairing_approval_and_revocation() {
    let fixture = Fixture::new();
    let alex = fixture.add_user("Alex", Role::Adult, 1);
    let key = DeviceKey::from_p256(*p256_signing_key(50).verifying_key());

    let device = fixture
        .users
        .register_device(alex.id, "phone", &key)
        .unwrap();
    assert!(!device.approved);

    fixture.users.approve_device(device.id).unwrap();
    fixture.clock.advance(5);
    fixture.users.touch_device(device.id).unwrap();
    let stored = fixture.users.device_by_did(key.did()).unwrap().unwrap();
    assert!(stored.approved);
    assert_eq!(stored.last_seen, Some(START + 5));
    assert_eq!(stored.key, key);

    fixture.users.revoke_device(device.id).unwrap();
    let stored = fixture.users.device(device.id).unwrap().unwrap();
    assert_eq!(stored.revoked_at, Some(START + 5));
    let err = fixture.users.approve_device(device.id).unwrap_err();
    assert!(matches!(err, UserError::DeviceRevoked { .. }), "{err}");
}

#[test]
fn hybrid_cli_device_round_trips() {
    let fixture = Fixture::new();
    let alex = fixture.add_user("Alex", Role::Adult, 1);
    let signing = HybridSigningKey::generate();
    let key = DeviceKey::from_hybrid(signing.verifying_key()).unwrap();

    let device = fixture
        .users
        .register_device(alex.id, "laptop CLI", &key)
        .unwrap();

    assert_eq!(fixture.users.device(device.id).unwrap().unwrap().key, key);
    assert_eq!(fixture.users.devices_of(alex.id).unwrap().len(), 1);
}

#[test]
fn same_device_key_cannot_pair_twice() {
    let fixture = Fixture::new();
    let alex = fixture.add_user("Alex", Role::Adult, 1);
    let key = DeviceKey::from_p256(*p256_signing_key(51).verifying_key());
    fixture
        .users
        .register_device(alex.id, "phone", &key)
        .unwrap();

    let err = fixture
        .users
        .register_device(alex.id, "phone again", &key)
        .unwrap_err();

    assert!(matches!(err, UserError::DidTaken { .. }), "{err}");
}

#[test]
fn device_for_unknown_user_rejected() {
    let fixture = Fixture::new();
    let key = DeviceKey::from_p256(*p256_signing_key(52).verifying_key());

    let err = fixture
        .users
        .register_device(UserId(99), "phone", &key)
        .unwrap_err();

    assert!(matches!(err, UserError::UserNotFound { .. }), "{err}");
}

#[test]
fn tampered_device_row_is_reported() {
    let fixture = Fixture::new();
    let alex = fixture.add_user("Alex", Role::Adult, 1);
    let key = DeviceKey::from_p256(*p256_signing_key(53).verifying_key());
    let device = fixture
        .users
        .register_device(alex.id, "phone", &key)
        .unwrap();

    // Someone with write access swaps the key but keeps the did.
    let other = DeviceKey::from_p256(*p256_signing_key(54).verifying_key())
        .to_stored()
        .1;
    let conn = fixture.users.store.get().unwrap();
    conn.execute(
        "UPDATE devices SET public_key = ?1 WHERE id = ?2",
        rusqlite::params![other, device.id.0],
    )
    .unwrap();
    drop(conn);

    let err = fixture.users.device(device.id).unwrap_err();
    assert!(
        matches!(err, UserError::CorruptRow { column: "did", .. }),
        "{err}"
    );
}

#[test]
fn revocations_survive_restart() {
    let fixture = Fixture::new();
    fixture.add_user("Admin", Role::Admin, 1);
    let alex = fixture.add_user("Alex", Role::Adult, 2);
    let key = DeviceKey::from_p256(*p256_signing_key(55).verifying_key());
    let device = fixture
        .users
        .register_device(alex.id, "phone", &key)
        .unwrap();

    fixture.users.revoke_device(device.id).unwrap();
    fixture.users.disable_user(alex.id).unwrap();

    // The shared registry now refuses new sessions for both.
    assert!(
        fixture
            .revocations
            .generations(alex.id, DeviceId(999))
            .is_err()
    );
    assert!(
        fixture
            .revocations
            .generations(UserId(999), device.id)
            .is_err()
    );

    // A fresh registry filled from the database does too.
    let registry = Arc::new(RevocationRegistry::new());
    let store = Store::open(&fixture.dir.path().join("hearth.sqlite3")).unwrap();
    let hasher = PasswordHasher::new(PasswordParams::INSECURE_FOR_TESTS, 1).unwrap();
    let _restarted =
        UserStore::open(store, hasher, fixture.clock.clone(), registry.clone()).unwrap();
    assert!(registry.generations(alex.id, DeviceId(999)).is_err());
    assert!(registry.generations(UserId(999), device.id).is_err());

    fixture.users.enable_user(alex.id).unwrap();
    assert!(
        fixture
            .revocations
            .generations(alex.id, DeviceId(999))
            .is_ok()
    );
}

#[test]
fn look_alike_names_rejected() {
    for name in ["admin\u{200B}", "\u{202E}evil", "a\u{2066}b", "\u{FEFF}kim"] {
        assert!(validate_name(name).is_err(), "{name:?} was accepted");
    }
    assert!(validate_name("Zoë").is_ok());
}
