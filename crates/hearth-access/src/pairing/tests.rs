use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Barrier, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hearth_pqc::sign::{HybridSigner as _, HybridSigningKey};
use hearth_store::Store;

use super::*;
use crate::clock::ManualClock;
use crate::credential::CredentialKind;
use crate::device_key::tests::p256_signing_key;
use crate::pake::{Spake2Output, normalize_code};
use crate::password::{PasswordHasher, PasswordParams};
use crate::session::RevocationRegistry;

const START: i64 = 1_750_000_000;
const PASSWORD: &str = "correct horse battery staple";
const LAN: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20));

/// Generating ML-DSA keys is slow; the tests share two household keys.
fn household() -> &'static HybridSigningKey {
    static KEY: OnceLock<HybridSigningKey> = OnceLock::new();
    KEY.get_or_init(HybridSigningKey::generate)
}

fn other_household() -> &'static HybridSigningKey {
    static KEY: OnceLock<HybridSigningKey> = OnceLock::new();
    KEY.get_or_init(HybridSigningKey::generate)
}

struct Fixture {
    dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    users: Arc<UserStore>,
    pairing: PairingService,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(START));
        let (users, pairing) = open_service(&dir, &clock);
        Self {
            dir,
            clock,
            users,
            pairing,
        }
    }

    /// Opens a second service on the same file, as `hearth pair` on the
    /// host does while the server runs, or the server after a restart.
    fn reopen(&self) -> PairingService {
        open_service(&self.dir, &self.clock).1
    }

    fn new_user_offer(&self, name: &str, role: Role) -> CreatedOffer {
        let kind = OfferKind::NewUser {
            name: Some(name.to_owned()),
            role,
        };
        self.pairing
            .create_offer(kind, OfferCreator::HostCli)
            .unwrap()
    }

    fn existing_user_offer(&self, user: UserId) -> CreatedOffer {
        let kind = OfferKind::ExistingUser { user };
        self.pairing
            .create_offer(kind, OfferCreator::User(UserId(1)))
            .unwrap()
    }

    fn add_user(&self, name: &str, role: Role, seed: u8) -> User {
        let new = NewUser {
            name,
            did: crate::did::Did::from_p256(p256_signing_key(seed).verifying_key()),
            role,
            password: Some(PASSWORD),
        };
        self.users.create_user(&new).unwrap()
    }

    fn attempts(&self, offer: &CreatedOffer) -> u32 {
        self.pairing
            .offer(&offer.offer.id)
            .unwrap()
            .unwrap()
            .attempts
    }

    fn stored_code(&self, offer_id: &str) -> Option<String> {
        let store = Store::open(&self.dir.path().join("hearth.sqlite3")).unwrap();
        let conn = store.get().unwrap();
        conn.query_row(
            "SELECT code FROM pairing_offers WHERE id = ?1",
            [offer_id],
            |row| row.get(0),
        )
        .unwrap()
    }
}

fn open_service(
    dir: &tempfile::TempDir,
    clock: &Arc<ManualClock>,
) -> (Arc<UserStore>, PairingService) {
    let store = Store::open(&dir.path().join("hearth.sqlite3")).unwrap();
    let hasher = PasswordHasher::new(PasswordParams::INSECURE_FOR_TESTS, 2).unwrap();
    let users = UserStore::open(
        store.clone(),
        hasher,
        clock.clone(),
        Arc::new(RevocationRegistry::new()),
    )
    .unwrap();
    let users = Arc::new(users);
    let pairing = PairingService::open(store, users.clone(), clock.clone()).unwrap();
    (users, pairing)
}

/// Returns the raw 65-byte public key a browser exports, in base64url.
fn browser_key(seed: u8) -> String {
    let point = p256_signing_key(seed).verifying_key().to_sec1_point(false);
    URL_SAFE_NO_PAD.encode(point.as_bytes())
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(text: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(text).unwrap()
}

/// The device's half of a pairing as the browser runs it.
struct DeviceSide {
    pairing_id: String,
    exchange: Spake2Output,
}

impl std::fmt::Debug for DeviceSide {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceSide")
            .field("pairing_id", &self.pairing_id)
            .finish_non_exhaustive()
    }
}

impl DeviceSide {
    fn confirmation(&self) -> String {
        b64(self.exchange.confirmation())
    }
}

/// Runs the device side of pairing start: SPAKE2 as party A over the
/// additional data that the device computes from what it sends.
fn start(
    pairing: &PairingService,
    offer_id: &str,
    typed_code: &str,
    key: &str,
    name: &str,
) -> Result<DeviceSide, PairingError> {
    start_sending(pairing, offer_id, typed_code, (key, name), (key, name))
}

/// Like [`start`], but sends another key and name than the device used for
/// its additional data, as a machine in the middle that swaps them would.
fn start_sending(
    pairing: &PairingService,
    offer_id: &str,
    typed_code: &str,
    (used_key, used_name): (&str, &str),
    (sent_key, sent_name): (&str, &str),
) -> Result<DeviceSide, PairingError> {
    let w = PasswordScalar::from_code(typed_code, offer_id.as_bytes());
    let additional_data = format!("{offer_id}\n{used_key}\n{used_name}");
    let device = Spake2::start(
        PakeRole::A,
        &w,
        b"hearth device",
        b"hearth server",
        additional_data.as_bytes(),
    );

    let started = pairing.start(offer_id, sent_key, sent_name, &b64(device.share()))?;
    let exchange = device.finish(&unb64(&started.share)).unwrap();
    Ok(DeviceSide {
        pairing_id: started.pairing_id,
        exchange,
    })
}

fn account(name: &str) -> Option<NewAccount<'_>> {
    Some(NewAccount {
        name,
        password: PASSWORD,
    })
}

#[test]
fn new_user_offer_pairs_browser() {
    let fixture = Fixture::new();
    let offer = fixture.new_user_offer("Alex", Role::Teen);
    let key = browser_key(1);

    let device = start(
        &fixture.pairing,
        &offer.offer.id,
        offer.code.as_str(),
        &key,
        "Alex's phone",
    )
    .unwrap();
    let paired = fixture
        .pairing
        .finish(
            &device.pairing_id,
            &device.confirmation(),
            account("Alex"),
            household(),
        )
        .unwrap();

    assert_eq!(
        device.exchange.verify_peer(&unb64(&paired.confirmation)),
        Ok(())
    );
    assert_eq!(paired.user.name, "Alex");
    assert_eq!(paired.user.role, Role::Teen);
    assert_eq!(&paired.user.did, paired.device.key.did());
    assert_eq!(paired.device.user_id, paired.user.id);
    assert_eq!(paired.device.name, "Alex's phone");
    assert!(paired.device.approved);
    let stored = fixture.users.device(paired.device.id).unwrap().unwrap();
    assert!(stored.approved, "the stored device is approved");
    assert_eq!(
        fixture.users.login("Alex", PASSWORD, LAN).unwrap().id,
        paired.user.id
    );
    let offer_now = fixture.pairing.offer(&offer.offer.id).unwrap().unwrap();
    assert_eq!(offer_now.used_at, Some(START));
    assert_eq!(
        offer_now.attempts, 0,
        "the right confirmation is no failure"
    );
    assert_eq!(fixture.stored_code(&offer.offer.id), None);
}

#[test]
fn existing_user_offer_adds_device() {
    let fixture = Fixture::new();
    let sam = fixture.add_user("Sam", Role::Adult, 200);
    let offer = fixture.existing_user_offer(sam.id);

    let device = start(
        &fixture.pairing,
        &offer.offer.id,
        offer.code.as_str(),
        &browser_key(2),
        "Sam's laptop",
    )
    .unwrap();
    let paired = fixture
        .pairing
        .finish(
            &device.pairing_id,
            &device.confirmation(),
            None,
            household(),
        )
        .unwrap();

    assert_eq!(paired.user, sam);
    assert_eq!(paired.device.user_id, sam.id);
    assert_ne!(paired.device.key.did(), &sam.did);
    assert_eq!(fixture.users.devices_of(sam.id).unwrap().len(), 1);
    assert_eq!(fixture.users.users().unwrap().len(), 1, "no user created");
}

#[test]
fn account_for_existing_user_offer_rejected() {
    let fixture = Fixture::new();
    let sam = fixture.add_user("Sam", Role::Adult, 200);
    let offer = fixture.existing_user_offer(sam.id);
    let device = start(
        &fixture.pairing,
        &offer.offer.id,
        offer.code.as_str(),
        &browser_key(3),
        "tablet",
    )
    .unwrap();

    let error = fixture
        .pairing
        .finish(
            &device.pairing_id,
            &device.confirmation(),
            account("Mallory"),
            household(),
        )
        .unwrap_err();
    assert!(
        matches!(error, PairingError::AccountNotAllowed { .. }),
        "{error}"
    );
    assert_eq!(error.kind(), PairingErrorKind::BadRequest);
    assert_eq!(fixture.attempts(&offer), 0);
    assert!(fixture.users.user_by_name("Mallory").unwrap().is_none());

    // The pairing stays pending, so the device can send the right request.
    let paired = fixture
        .pairing
        .finish(
            &device.pairing_id,
            &device.confirmation(),
            None,
            household(),
        )
        .unwrap();
    assert_eq!(paired.user.id, sam.id);
}

#[test]
fn new_user_offer_requires_matching_account() {
    let fixture = Fixture::new();
    let offer = fixture.new_user_offer("Alex", Role::Child);
    let device = start(
        &fixture.pairing,
        &offer.offer.id,
        offer.code.as_str(),
        &browser_key(4),
        "tablet",
    )
    .unwrap();
    let finish = |account| {
        fixture.pairing.finish(
            &device.pairing_id,
            &device.confirmation(),
            account,
            household(),
        )
    };

    let missing = finish(None).unwrap_err();
    assert!(
        matches!(missing, PairingError::AccountRequired { .. }),
        "{missing}"
    );
    let other_name = finish(account("Root")).unwrap_err();
    assert!(
        matches!(other_name, PairingError::AccountNameMismatch { .. }),
        "{other_name}"
    );
    assert_eq!(fixture.attempts(&offer), 0);

    let paired = finish(account("alex")).unwrap();
    assert_eq!(paired.user.name, "Alex", "the offer's spelling wins");
    assert_eq!(paired.user.role, Role::Child);
}

#[test]
fn wrong_code_counts_attempt() {
    let fixture = Fixture::new();
    let offer = fixture.new_user_offer("Alex", Role::Adult);
    let device = start(
        &fixture.pairing,
        &offer.offer.id,
        "AAAA-AAAA",
        &browser_key(5),
        "phone",
    )
    .unwrap();

    let error = fixture
        .pairing
        .finish(
            &device.pairing_id,
            &device.confirmation(),
            account("Alex"),
            household(),
        )
        .unwrap_err();

    assert!(
        matches!(
            error,
            PairingError::WrongCode {
                attempts_left: 4,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(error.kind(), PairingErrorKind::Forbidden);
    assert_eq!(fixture.attempts(&offer), 1);
    let again = fixture
        .pairing
        .finish(
            &device.pairing_id,
            &device.confirmation(),
            account("Alex"),
            household(),
        )
        .unwrap_err();
    assert!(
        matches!(again, PairingError::PairingNotFound { .. }),
        "the failed pairing is dropped: {again}"
    );
    assert!(fixture.users.users().unwrap().is_empty());
}

#[test]
fn five_wrong_codes_burn_offer() {
    let fixture = Fixture::new();
    let offer = fixture.new_user_offer("Alex", Role::Adult);
    let id = &offer.offer.id;
    let right_code = offer.code.as_str();
    // Started with the right code before the offer burns, finished after.
    let early = start(&fixture.pairing, id, right_code, &browser_key(6), "phone").unwrap();

    for round in 1..=5u32 {
        let guess = start(&fixture.pairing, id, "ZZZZ-ZZZZ", &browser_key(6), "phone").unwrap();
        let error = fixture
            .pairing
            .finish(
                &guess.pairing_id,
                &guess.confirmation(),
                account("Alex"),
                household(),
            )
            .unwrap_err();
        assert!(
            matches!(error, PairingError::WrongCode { attempts_left, .. } if attempts_left == 5 - round),
            "round {round}: {error}"
        );
    }

    assert_eq!(fixture.attempts(&offer), 5);
    assert_eq!(
        fixture.stored_code(id),
        None,
        "a burned offer forgets its code"
    );
    let late = start(&fixture.pairing, id, right_code, &browser_key(6), "phone").unwrap_err();
    assert!(
        matches!(late, PairingError::OfferBurned { attempts: 5, .. }),
        "{late}"
    );
    assert_eq!(late.kind(), PairingErrorKind::Burned);
    let pending = fixture
        .pairing
        .finish(
            &early.pairing_id,
            &early.confirmation(),
            account("Alex"),
            household(),
        )
        .unwrap_err();
    assert!(
        matches!(pending, PairingError::OfferBurned { .. }),
        "{pending}"
    );
    assert!(fixture.users.users().unwrap().is_empty());
}

#[test]
fn ten_thousand_guesses_never_succeed() {
    let fixture = Fixture::new();
    let offer = fixture.new_user_offer("Alex", Role::Adult);
    let id = &offer.offer.id;
    let key = browser_key(7);
    let mut checked = 0;
    let mut rejected = 0;
    let mut guesses = 0;

    // First a batch of pairings started at once, so that their
    // confirmations all arrive while the offer still looks usable.
    let mut batch = Vec::new();
    while batch.len() < 40 {
        let guess = PairingCode::generate().unwrap();
        batch.push(start(&fixture.pairing, id, guess.as_str(), &key, "phone").unwrap());
        guesses += 1;
    }
    for device in &batch {
        match fixture.pairing.finish(
            &device.pairing_id,
            &device.confirmation(),
            account("Alex"),
            household(),
        ) {
            Ok(paired) => panic!("a guess paired {:?}", paired.device),
            Err(PairingError::WrongCode { .. }) => checked += 1,
            // Burned, or dropped because the offer holds four pairings at most.
            Err(PairingError::OfferBurned { .. } | PairingError::PairingNotFound { .. }) => rejected += 1,
            Err(other) => panic!("unexpected error: {other}"),
        }
    }

    // Then one guess at a time, all within the offer's 10 minutes.
    while guesses < 10_000 {
        let guess = PairingCode::generate().unwrap();
        guesses += 1;
        match start(&fixture.pairing, id, guess.as_str(), &key, "phone") {
            // The batch above checked at most four codes (one offer holds
            // four pairings), so a few more guesses reach finish.
            Ok(device) => match fixture.pairing.finish(
                &device.pairing_id,
                &device.confirmation(),
                account("Alex"),
                household(),
            ) {
                Ok(paired) => panic!("guess {guesses} paired {:?}", paired.device),
                Err(PairingError::WrongCode { .. }) => checked += 1,
                Err(PairingError::OfferBurned { .. }) => rejected += 1,
                Err(other) => panic!("guess {guesses}: unexpected error {other}"),
            },
            Err(PairingError::OfferBurned { .. }) => rejected += 1,
            Err(other) => panic!("guess {guesses}: unexpected error {other}"),
        }
    }

    assert_eq!(checked, 5, "confirmations checked");
    assert_eq!(rejected, 10_000 - 5);
    let right = start(&fixture.pairing, id, offer.code.as_str(), &key, "phone").unwrap_err();
    assert!(matches!(right, PairingError::OfferBurned { .. }), "{right}");
    assert!(fixture.users.users().unwrap().is_empty());
}

#[test]
fn expired_offer_rejected() {
    let fixture = Fixture::new();
    let offer = fixture.new_user_offer("Alex", Role::Adult);
    let id = &offer.offer.id;
    let code = offer.code.as_str();
    assert_eq!(offer.offer.expires_at, START + 600);

    fixture.clock.set(START + 599);
    let just_in_time = start(&fixture.pairing, id, code, &browser_key(8), "phone").unwrap();
    fixture.clock.set(START + 600);
    let finished = fixture
        .pairing
        .finish(
            &just_in_time.pairing_id,
            &just_in_time.confirmation(),
            account("Alex"),
            household(),
        )
        .unwrap_err();
    let started = start(&fixture.pairing, id, code, &browser_key(8), "phone").unwrap_err();

    for error in [&finished, &started] {
        assert!(
            matches!(error, PairingError::OfferExpired { expired_at, .. } if *expired_at == START + 600),
            "{error}"
        );
        assert_eq!(error.kind(), PairingErrorKind::Expired);
        let message = error.to_string();
        assert!(message.contains(id), "{message}");
        assert!(message.contains("ask an admin for a new code"), "{message}");
    }
    assert_eq!(
        fixture.stored_code(id),
        None,
        "pruning forgets the expired code"
    );
}

#[test]
fn pending_pairing_expires() {
    let fixture = Fixture::new();
    let offer = fixture.new_user_offer("Alex", Role::Adult);
    let device = start(
        &fixture.pairing,
        &offer.offer.id,
        offer.code.as_str(),
        &browser_key(9),
        "phone",
    )
    .unwrap();

    fixture.clock.advance(PENDING_TTL_SECS);
    let error = fixture
        .pairing
        .finish(
            &device.pairing_id,
            &device.confirmation(),
            account("Alex"),
            household(),
        )
        .unwrap_err();

    assert!(
        matches!(error, PairingError::PairingNotFound { .. }),
        "{error}"
    );
    assert_eq!(error.kind(), PairingErrorKind::NotFound);
}

#[test]
fn offer_pairs_only_once() {
    let fixture = Fixture::new();
    let sam = fixture.add_user("Sam", Role::Adult, 200);
    let offer = fixture.existing_user_offer(sam.id);
    let id = &offer.offer.id;
    let code = offer.code.as_str();
    let first = start(&fixture.pairing, id, code, &browser_key(10), "laptop").unwrap();
    let second = start(&fixture.pairing, id, code, &browser_key(11), "phone").unwrap();

    fixture
        .pairing
        .finish(&first.pairing_id, &first.confirmation(), None, household())
        .unwrap();
    let error = fixture
        .pairing
        .finish(
            &second.pairing_id,
            &second.confirmation(),
            None,
            household(),
        )
        .unwrap_err();
    let restart = start(&fixture.pairing, id, code, &browser_key(12), "tv").unwrap_err();

    assert!(matches!(error, PairingError::OfferUsed { .. }), "{error}");
    assert_eq!(error.kind(), PairingErrorKind::Conflict);
    assert!(
        matches!(restart, PairingError::OfferUsed { .. }),
        "{restart}"
    );
    assert_eq!(fixture.users.devices_of(sam.id).unwrap().len(), 1);
}

#[test]
fn concurrent_finishes_pair_once() {
    let fixture = Fixture::new();
    let sam = fixture.add_user("Sam", Role::Adult, 200);
    // Two services on one file, as the server and a second process would be.
    let other = fixture.reopen();
    let services = [&fixture.pairing, &other];

    for round in 0..20u8 {
        let offer = fixture.existing_user_offer(sam.id);
        let (id, code) = (&offer.offer.id, offer.code.as_str());
        let devices = [
            start(
                services[0],
                id,
                code,
                &browser_key(40 + 2 * round),
                "laptop",
            )
            .unwrap(),
            start(services[1], id, code, &browser_key(41 + 2 * round), "phone").unwrap(),
        ];
        let barrier = Barrier::new(2);

        let results: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = devices
                .iter()
                .zip(services)
                .map(|(device, service)| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        barrier.wait();
                        service.finish(
                            &device.pairing_id,
                            &device.confirmation(),
                            None,
                            household(),
                        )
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| handle.join().unwrap())
                .collect()
        });

        let failed: Vec<_> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert_eq!(failed.len(), 1, "round {round}: {failed:?}");
        assert!(
            matches!(failed[0], PairingError::OfferUsed { .. }),
            "round {round}: {}",
            failed[0]
        );
        let devices = fixture.users.devices_of(sam.id).unwrap();
        assert_eq!(devices.len(), usize::from(round) + 1, "round {round}");
    }
}

#[test]
fn claim_succeeds_once() {
    let fixture = Fixture::new();
    let offer = fixture.new_user_offer("Alex", Role::Adult);
    let id = &offer.offer.id;
    let conn = fixture.pairing.store.get().unwrap();

    // Two confirmations counted before either is checked, both right.
    assert_eq!(offers::begin_attempt(&conn, id, START).unwrap(), Some(1));
    assert_eq!(offers::begin_attempt(&conn, id, START).unwrap(), Some(2));
    let first = offers::claim(&conn, id, START).unwrap();
    let second = offers::claim(&conn, id, START).unwrap();

    assert!(first, "the first claim wins");
    assert!(!second, "the second claim loses");
    assert_eq!(offers::begin_attempt(&conn, id, START).unwrap(), None);
}

#[test]
fn paired_device_key_rejected() {
    let fixture = Fixture::new();
    let sam = fixture.add_user("Sam", Role::Adult, 200);
    let key = browser_key(15);
    let first = fixture.existing_user_offer(sam.id);
    let device = start(
        &fixture.pairing,
        &first.offer.id,
        first.code.as_str(),
        &key,
        "laptop",
    )
    .unwrap();
    fixture
        .pairing
        .finish(
            &device.pairing_id,
            &device.confirmation(),
            None,
            household(),
        )
        .unwrap();

    let second = fixture.new_user_offer("Alex", Role::Adult);
    let error = start(
        &fixture.pairing,
        &second.offer.id,
        second.code.as_str(),
        &key,
        "laptop",
    )
    .unwrap_err();

    assert!(
        matches!(error, PairingError::DeviceAlreadyPaired { .. }),
        "{error}"
    );
    assert_eq!(error.kind(), PairingErrorKind::Conflict);
    assert_eq!(fixture.attempts(&second), 0);
}

#[test]
fn changed_device_name_or_key_fails() {
    let fixture = Fixture::new();
    let offer = fixture.new_user_offer("Alex", Role::Adult);
    let id = &offer.offer.id;
    let code = offer.code.as_str();
    let (own_key, other_key) = (browser_key(16), browser_key(17));
    let cases = [
        (
            (own_key.as_str(), "Alex's phone"),
            (own_key.as_str(), "Kitchen tablet"),
        ),
        (
            (own_key.as_str(), "Alex's phone"),
            (other_key.as_str(), "Alex's phone"),
        ),
    ];

    for (round, (used, sent)) in cases.into_iter().enumerate() {
        let device = start_sending(&fixture.pairing, id, code, used, sent).unwrap();
        let error = fixture
            .pairing
            .finish(
                &device.pairing_id,
                &device.confirmation(),
                account("Alex"),
                household(),
            )
            .unwrap_err();
        assert!(
            matches!(error, PairingError::WrongCode { .. }),
            "case {round}: {error}"
        );
    }

    assert_eq!(fixture.attempts(&offer), 2);
    assert!(fixture.users.users().unwrap().is_empty());
}

#[test]
fn offers_survive_reopening() {
    let fixture = Fixture::new();
    let offer = fixture.new_user_offer("Alex", Role::Adult);
    let id = offer.offer.id.clone();
    let wrong = start(&fixture.pairing, &id, "AAAAAAAA", &browser_key(18), "phone").unwrap();
    fixture
        .pairing
        .finish(
            &wrong.pairing_id,
            &wrong.confirmation(),
            account("Alex"),
            household(),
        )
        .unwrap_err();
    let Fixture {
        dir,
        clock,
        users,
        pairing,
    } = fixture;
    drop((users, pairing));

    let (_users, reopened) = open_service(&dir, &clock);
    let stored = reopened.offer(&id).unwrap().unwrap();
    let device = start(
        &reopened,
        &id,
        offer.code.as_str(),
        &browser_key(18),
        "phone",
    )
    .unwrap();
    let paired = reopened
        .finish(
            &device.pairing_id,
            &device.confirmation(),
            account("Alex"),
            household(),
        )
        .unwrap();

    assert_eq!(stored, offer.offer.clone().with_attempts(1));
    assert_eq!(paired.user.name, "Alex");
}

#[test]
fn credential_verifies_with_household_key() {
    let fixture = Fixture::new();
    let offer = fixture.new_user_offer("Alex", Role::Adult);
    let device = start(
        &fixture.pairing,
        &offer.offer.id,
        offer.code.as_str(),
        &browser_key(19),
        "living room TV",
    )
    .unwrap();
    let paired = fixture
        .pairing
        .finish(
            &device.pairing_id,
            &device.confirmation(),
            account("Alex"),
            household(),
        )
        .unwrap();
    let bytes = paired.credential.to_bytes();

    let claims = Credential::verify(&bytes, &household().verifying_key(), START + 1).unwrap();
    assert_eq!(claims.kind, CredentialKind::Device);
    assert_eq!(&claims.subject, paired.device.key.did());
    assert_eq!(claims.owner.as_ref(), Some(&paired.user.did));
    assert_eq!(claims.device_name.as_deref(), Some("living room TV"));
    assert_eq!(claims.issued_at, START);
    assert_eq!(claims.expires_at, START + DEVICE_CREDENTIAL_TTL_SECS);
    assert!(Credential::verify(&bytes, &other_household().verifying_key(), START + 1).is_err());
}

#[test]
fn hybrid_cli_device_pairs() {
    let fixture = Fixture::new();
    let sam = fixture.add_user("Sam", Role::Admin, 200);
    let offer = fixture.existing_user_offer(sam.id);
    let cli_key = HybridSigningKey::generate().verifying_key();
    let key = b64(&cli_key.to_bytes());

    let device = start(
        &fixture.pairing,
        &offer.offer.id,
        offer.code.as_str(),
        &key,
        "hearth CLI on nas",
    )
    .unwrap();
    let paired = fixture
        .pairing
        .finish(
            &device.pairing_id,
            &device.confirmation(),
            None,
            household(),
        )
        .unwrap();

    assert_eq!(paired.device.key, DeviceKey::from_hybrid(cli_key).unwrap());
}

#[test]
fn typed_code_forms_pair() {
    let fixture = Fixture::new();
    let offer = Offer {
        id: code::random_id("offer id").unwrap(),
        kind: OfferKind::NewUser {
            name: Some("Alex".to_owned()),
            role: Role::Adult,
        },
        created_by: OfferCreator::HostCli,
        created_at: START,
        expires_at: START + OFFER_TTL_SECS,
        attempts: 0,
        used_at: None,
    };
    let code = PairingCode::from_stored(normalize_code("K70F1M1D"));
    offers::insert(&fixture.pairing.store.get().unwrap(), &offer, &code).unwrap();

    assert_eq!(code.display_form().as_str(), "K70F-1M1D");
    let device = start(
        &fixture.pairing,
        &offer.id,
        "k7of-im ld",
        &browser_key(20),
        "phone",
    )
    .unwrap();
    fixture
        .pairing
        .finish(
            &device.pairing_id,
            &device.confirmation(),
            account("Alex"),
            household(),
        )
        .unwrap();
}

#[test]
fn generated_codes_are_uniform() {
    let mut counts = [0u32; 32];

    for _ in 0..2_000 {
        let code = PairingCode::generate().unwrap();
        assert_eq!(code.as_str().len(), CODE_LEN);
        assert_eq!(normalize_code(code.as_str()).as_str(), code.as_str());
        let display = code.display_form();
        assert_eq!(display.len(), 9);
        assert_eq!(&display[4..5], "-");
        assert_eq!(display.replace('-', ""), code.as_str());
        for byte in code.as_str().bytes() {
            let index = CODE_ALPHABET.iter().position(|c| *c == byte).unwrap();
            counts[index] += 1;
        }
    }

    // 16,000 characters: 500 of each expected, standard deviation 22.
    for (index, count) in counts.iter().enumerate() {
        let symbol = char::from(CODE_ALPHABET[index]);
        assert!((350..=650).contains(count), "{symbol}: {count} of 16,000");
    }
    assert_eq!(
        format!("{:?}", PairingCode::generate().unwrap()),
        "PairingCode(..)"
    );
}

#[test]
fn setup_offer_only_without_users() {
    let fixture = Fixture::new();
    let setup = fixture.pairing.setup_offer_if_no_users().unwrap().unwrap();
    let spare = fixture.pairing.setup_offer_if_no_users().unwrap().unwrap();
    assert_eq!(setup.offer.created_by, OfferCreator::FirstRun);
    assert_eq!(
        setup.offer.kind,
        OfferKind::NewUser {
            name: None,
            role: Role::Admin
        }
    );

    let device = start(
        &fixture.pairing,
        &setup.offer.id,
        setup.code.as_str(),
        &browser_key(21),
        "laptop",
    )
    .unwrap();
    let paired = fixture
        .pairing
        .finish(
            &device.pairing_id,
            &device.confirmation(),
            account("Robin"),
            household(),
        )
        .unwrap();
    assert_eq!(paired.user.name, "Robin");
    assert_eq!(paired.user.role, Role::Admin);
    assert!(fixture.pairing.setup_offer_if_no_users().unwrap().is_none());

    // A second setup offer from before the first admin existed adds no admin.
    let late = start(
        &fixture.pairing,
        &spare.offer.id,
        spare.code.as_str(),
        &browser_key(22),
        "phone",
    )
    .unwrap();
    let error = fixture
        .pairing
        .finish(
            &late.pairing_id,
            &late.confirmation(),
            account("Eve"),
            household(),
        )
        .unwrap_err();
    assert!(
        matches!(error, PairingError::Users(UserError::AlreadySetUp)),
        "{error}"
    );
    assert_eq!(error.kind(), PairingErrorKind::Conflict);
    assert_eq!(fixture.users.users().unwrap().len(), 1);
}

#[test]
fn failed_user_creation_releases_offer() {
    let fixture = Fixture::new();
    fixture.add_user("Sam", Role::Adult, 200);
    let kind = OfferKind::NewUser {
        name: None,
        role: Role::Adult,
    };
    let offer = fixture
        .pairing
        .create_offer(kind, OfferCreator::HostCli)
        .unwrap();
    let id = &offer.offer.id;
    let code = offer.code.as_str();
    let try_name = |name: &str, password: &str| {
        let device = start(&fixture.pairing, id, code, &browser_key(23), "phone").unwrap();
        let account = NewAccount { name, password };
        fixture.pairing.finish(
            &device.pairing_id,
            &device.confirmation(),
            Some(account),
            household(),
        )
    };

    let name_taken = try_name("sam", PASSWORD).unwrap_err();
    let short = try_name("Kim", "short").unwrap_err();
    let paired = try_name("Kim", PASSWORD).unwrap();

    assert!(
        matches!(name_taken, PairingError::Users(UserError::NameTaken { .. })),
        "{name_taken}"
    );
    assert_eq!(name_taken.kind(), PairingErrorKind::Conflict);
    assert_eq!(short.kind(), PairingErrorKind::BadRequest, "{short}");
    assert_eq!(paired.user.name, "Kim");
    assert_eq!(fixture.attempts(&offer), 0);
}

#[test]
fn malformed_requests_rejected_without_attempt() {
    let fixture = Fixture::new();
    let offer = fixture.new_user_offer("Alex", Role::Adult);
    let id = offer.offer.id.as_str();
    let key = browser_key(24);
    let share = b64(&[4u8; 65]);
    let cases = [
        ("not an offer id", key.as_str(), "phone", share.as_str()),
        (id, "not base64!", "phone", share.as_str()),
        (id, "AAAA", "phone", share.as_str()),
        (id, key.as_str(), "", share.as_str()),
        (id, key.as_str(), "line\nbreak", share.as_str()),
        (id, key.as_str(), "phone", "AAAA"),
        (id, key.as_str(), "phone", share.as_str()),
    ];

    for (offer_id, device_key, name, share) in cases {
        let error = fixture
            .pairing
            .start(offer_id, device_key, name, share)
            .unwrap_err();
        assert_eq!(
            error.kind(),
            PairingErrorKind::BadRequest,
            "{offer_id} {device_key} {name:?} {share}: {error}"
        );
    }

    let device = start(&fixture.pairing, id, offer.code.as_str(), &key, "phone").unwrap();
    for confirmation in ["", "AAAA", "*"] {
        let error = fixture
            .pairing
            .finish(
                &device.pairing_id,
                confirmation,
                account("Alex"),
                household(),
            )
            .unwrap_err();
        assert_eq!(error.kind(), PairingErrorKind::BadRequest, "{error}");
    }
    assert_eq!(fixture.attempts(&offer), 0);
}

#[test]
fn unknown_offer_not_found() {
    let fixture = Fixture::new();
    let unknown = code::random_id("offer id").unwrap();

    let error = start(
        &fixture.pairing,
        &unknown,
        "AAAAAAAA",
        &browser_key(25),
        "phone",
    )
    .unwrap_err();

    assert!(
        matches!(error, PairingError::OfferNotFound { .. }),
        "{error}"
    );
    assert_eq!(error.kind(), PairingErrorKind::NotFound);
}

#[test]
fn pending_pairings_are_bounded() {
    let fixture = Fixture::new();
    // One pairing on each of MAX_PENDING offers, since one offer holds at
    // most four.
    for seed in 0..MAX_PENDING {
        let offer = fixture.new_user_offer(&format!("User{seed}"), Role::Adult);
        let seed = u8::try_from(30 + seed).unwrap();
        start(&fixture.pairing, &offer.offer.id, offer.code.as_str(), &browser_key(seed), "phone").unwrap();
    }
    let offer = fixture.new_user_offer("Alex", Role::Adult);
    let (id, code) = (&offer.offer.id, offer.code.as_str());
    let full = start(&fixture.pairing, id, code, &browser_key(200), "phone").unwrap_err();
    fixture.clock.advance(PENDING_TTL_SECS);
    let later = start(&fixture.pairing, id, code, &browser_key(200), "phone");

    assert!(
        matches!(full, PairingError::TooManyPending { limit: 64 }),
        "{full}"
    );
    assert_eq!(full.kind(), PairingErrorKind::Unavailable);
    assert!(later.is_ok(), "expired pairings make room");
}

#[test]
fn offer_for_disabled_user_rejected() {
    let fixture = Fixture::new();
    let kim = fixture.add_user("Kim", Role::Child, 200);
    fixture.users.disable_user(kim.id).unwrap();

    let kind = OfferKind::ExistingUser { user: kim.id };
    let error = fixture
        .pairing
        .create_offer(kind, OfferCreator::HostCli)
        .unwrap_err();

    assert!(
        matches!(error, PairingError::UserUnavailable { .. }),
        "{error}"
    );
    assert_eq!(error.kind(), PairingErrorKind::Forbidden);
}

#[test]
fn link_carries_offer_and_code_after_fragment() {
    let fixture = Fixture::new();
    let offer = fixture.new_user_offer("Alex", Role::Adult);

    let link = offer.link("hearth.local:8443");

    assert_eq!(
        link.as_str(),
        format!(
            "https://hearth.local:8443/pair#offer={}&code={}",
            offer.offer.id,
            offer.code.as_str()
        )
    );
    assert_eq!(unb64(&offer.offer.id).len(), 16);
}

impl Offer {
    fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        self
    }
}

#[test]
fn one_offer_cannot_fill_the_pending_table() {
    let fixture = Fixture::new();
    let flooded = fixture.new_user_offer("guest", Role::Adult);
    let other = fixture.new_user_offer("victim", Role::Adult);

    for seed in 0..(MAX_PENDING as u8 * 2) {
        start(&fixture.pairing, &flooded.offer.id, "WRONGCDE", &browser_key(seed + 1), "flood").unwrap();
    }
    let started = start(&fixture.pairing, &other.offer.id, other.code.as_str(), &browser_key(250), "victim's phone");

    assert!(started.is_ok(), "another offer could not start: {:?}", started.err());
}
