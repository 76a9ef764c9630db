//! The test KME's rules and key pool, apart from HTTP.
//!
//! One process plays the KMEs of all SAEs. A key is created when a master
//! SAE requests it (`enc_keys`) and waits in the pool until each of its
//! slave SAEs has fetched it once (`dec_keys`). Then it is dropped.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use hearth_pqc::qkd::QkdKey;
use rand::RngCore;
use zeroize::Zeroizing;

use super::TestKmeConfig;
use crate::api::{KeyRequest, Status};

/// Why the KME rejects a request; the HTTP layer maps each variant to its
/// status code and an ETSI 014 Error body.
#[derive(Debug)]
pub(super) enum Rejection {
    /// 400: the request breaks the KME's rules.
    BadRequest {
        /// The Error body's `message`.
        message: String,
        /// Key ids the KME cannot deliver, listed in the Error body's `details`.
        key_ids: Vec<String>,
    },
    /// 401: the caller is not an SAE of this KME, or not a party to the key.
    Unauthorized(String),
    /// 503: the link is down or the pool has no room for more keys.
    Unavailable(String),
}

impl Rejection {
    fn bad_request(message: String) -> Self {
        Self::BadRequest { message, key_ids: Vec::new() }
    }
}

/// A key waiting in the pool for its slave SAEs.
struct PooledKey {
    master: String,
    /// Every slave SAE the master named, the first one included.
    slaves: Vec<String>,
    /// Slave SAEs that have not fetched the key yet.
    waiting: Vec<String>,
    key: Zeroizing<Vec<u8>>,
}

/// The KME: its limits, its registered SAEs, the key pool and the link state.
pub(super) struct Kme {
    config: TestKmeConfig,
    sae_ids: HashSet<String>,
    link_down: AtomicBool,
    pool: Mutex<HashMap<String, PooledKey>>,
}

impl Kme {
    pub fn new(config: TestKmeConfig) -> Self {
        let sae_ids = config.sae_ids.iter().cloned().collect();
        Self { config, sae_ids, link_down: AtomicBool::new(false), pool: Mutex::new(HashMap::new()) }
    }

    pub fn set_link_down(&self, down: bool) {
        self.link_down.store(down, Ordering::SeqCst);
    }

    pub fn is_link_down(&self) -> bool {
        self.link_down.load(Ordering::SeqCst)
    }

    /// Get status: the caller is the master SAE.
    pub fn status(&self, caller: &str, slave: &str) -> Result<Status, Rejection> {
        self.check_registered(caller)?;
        self.check_partner(caller, slave)?;

        let pending = pending_count(&self.lock_pool(), caller, slave);
        Ok(Status {
            source_KME_ID: self.config.kme_id.clone(),
            target_KME_ID: self.config.kme_id.clone(),
            master_SAE_ID: caller.to_owned(),
            slave_SAE_ID: slave.to_owned(),
            key_size: self.config.key_size,
            stored_key_count: self.config.max_key_count.saturating_sub(pending),
            max_key_count: self.config.max_key_count,
            max_key_per_request: self.config.max_key_per_request,
            max_key_size: self.config.max_key_size,
            min_key_size: self.config.min_key_size,
            max_SAE_ID_count: self.config.max_sae_id_count,
            status_extension: None,
        })
    }

    /// Get key: makes `request.number` new keys for `caller` (the master)
    /// and puts them in the pool for `slave` and the additional slaves.
    pub fn enc_keys(&self, caller: &str, slave: &str, request: &KeyRequest) -> Result<Vec<QkdKey>, Rejection> {
        self.check_registered(caller)?;
        self.check_partner(caller, slave)?;
        if !request.extension_mandatory.is_empty() {
            return Err(Rejection::bad_request("this KME supports no mandatory extension".to_owned()));
        }
        let number = self.check_number(request.number.unwrap_or(1))?;
        let size_bits = self.check_size(request.size.unwrap_or(self.config.key_size))?;
        let slaves = self.check_slaves(caller, slave, &request.additional_slave_SAE_IDs)?;

        let mut pool = self.lock_pool();
        let pending = pending_count(&pool, caller, slave);
        if pending.saturating_add(number) > self.config.max_key_count {
            return Err(Rejection::Unavailable(format!(
                "{number} more keys would exceed max_key_count {} ({pending} keys wait for {slave})",
                self.config.max_key_count
            )));
        }

        let mut issued = Vec::with_capacity(number as usize);
        for _ in 0..number {
            let key_id = new_key_id();
            let mut key = Zeroizing::new(vec![0u8; (size_bits / 8) as usize]);
            rand::rng().fill_bytes(&mut key);

            let pooled = PooledKey {
                master: caller.to_owned(),
                slaves: slaves.clone(),
                waiting: slaves.clone(),
                key: key.clone(),
            };
            pool.insert(key_id.clone(), pooled);
            issued.push(QkdKey { key_id, key });
        }
        Ok(issued)
    }

    /// Get key with key IDs: hands `caller` (a slave) the keys that `master`
    /// obtained. Every key id must be deliverable or nothing is delivered.
    pub fn dec_keys(&self, caller: &str, master: &str, key_ids: &[String]) -> Result<Vec<QkdKey>, Rejection> {
        self.check_registered(caller)?;
        if key_ids.is_empty() {
            return Err(Rejection::bad_request("key_IDs is empty".to_owned()));
        }
        if key_ids.len() > self.config.max_key_per_request as usize {
            return Err(Rejection::bad_request(format!(
                "{} key IDs requested, max_key_per_request is {}",
                key_ids.len(),
                self.config.max_key_per_request
            )));
        }
        let mut unique = HashSet::new();
        if let Some(duplicate) = key_ids.iter().find(|id| !unique.insert(id.as_str())) {
            return Err(Rejection::bad_request(format!("key_ID {duplicate} is requested twice")));
        }

        let mut pool = self.lock_pool();
        let mut missing = Vec::new();
        for id in key_ids {
            match pool.get(id) {
                None => missing.push(id.clone()),
                Some(key) if key.master != master || !key.slaves.iter().any(|s| s == caller) => {
                    return Err(Rejection::Unauthorized(format!(
                        "key {id} was not shared by SAE {master} with SAE {caller}"
                    )));
                }
                Some(key) if !key.waiting.iter().any(|s| s == caller) => missing.push(id.clone()),
                Some(_) => {}
            }
        }
        if !missing.is_empty() {
            return Err(Rejection::BadRequest {
                message: format!("{} key IDs are unknown or were already delivered to SAE {caller}", missing.len()),
                key_ids: missing,
            });
        }

        let mut delivered = Vec::with_capacity(key_ids.len());
        for id in key_ids {
            let Some(entry) = pool.get_mut(id) else {
                continue;
            };
            entry.waiting.retain(|s| s != caller);
            delivered.push(QkdKey { key_id: id.clone(), key: entry.key.clone() });
            if entry.waiting.is_empty() {
                pool.remove(id);
            }
        }
        Ok(delivered)
    }

    fn check_registered(&self, caller: &str) -> Result<(), Rejection> {
        if self.sae_ids.contains(caller) {
            Ok(())
        } else {
            Err(Rejection::Unauthorized(format!("SAE {caller} is not registered with this KME")))
        }
    }

    fn check_partner(&self, master: &str, slave: &str) -> Result<(), Rejection> {
        if !self.sae_ids.contains(slave) {
            return Err(Rejection::Unauthorized(format!("slave SAE {slave} is not registered with this KME")));
        }
        if slave == master {
            return Err(Rejection::bad_request(format!("slave SAE {slave} is the calling SAE itself")));
        }
        Ok(())
    }

    fn check_number(&self, number: u32) -> Result<u32, Rejection> {
        if number == 0 {
            return Err(Rejection::bad_request("number must be at least 1".to_owned()));
        }
        if number > self.config.max_key_per_request {
            return Err(Rejection::bad_request(format!(
                "number {number} exceeds max_key_per_request {}",
                self.config.max_key_per_request
            )));
        }
        Ok(number)
    }

    fn check_size(&self, size_bits: u32) -> Result<u32, Rejection> {
        if !size_bits.is_multiple_of(8) {
            return Err(Rejection::bad_request(format!("size {size_bits} is not a multiple of 8")));
        }
        if size_bits < self.config.min_key_size || size_bits > self.config.max_key_size {
            return Err(Rejection::bad_request(format!(
                "size {size_bits} is outside min_key_size {} to max_key_size {}",
                self.config.min_key_size, self.config.max_key_size
            )));
        }
        Ok(size_bits)
    }

    /// Checks the slave and the additional slaves against the KME's SAEs and
    /// `max_SAE_ID_count`, and returns them as one list.
    fn check_slaves(&self, master: &str, slave: &str, additional: &[String]) -> Result<Vec<String>, Rejection> {
        if additional.len() > self.config.max_sae_id_count as usize {
            return Err(Rejection::bad_request(format!(
                "{} additional slave SAEs exceed max_SAE_ID_count {}",
                additional.len(),
                self.config.max_sae_id_count
            )));
        }

        let mut slaves = vec![slave.to_owned()];
        for extra in additional {
            self.check_partner(master, extra)?;
            if slaves.contains(extra) {
                return Err(Rejection::bad_request(format!("slave SAE {extra} is named twice")));
            }
            slaves.push(extra.clone());
        }
        Ok(slaves)
    }

    fn lock_pool(&self) -> std::sync::MutexGuard<'_, HashMap<String, PooledKey>> {
        // A panic while the lock was held leaves the map itself consistent,
        // because every change is a single insert, retain or remove.
        self.pool.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Keys in `pool` that `master` obtained and `slave` has not fetched yet.
fn pending_count(pool: &HashMap<String, PooledKey>, master: &str, slave: &str) -> u32 {
    let count = pool.values().filter(|key| key.master == master && key.waiting.iter().any(|s| s == slave)).count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

/// Generates a random (version 4) UUID, the key id format of ETSI 014.
fn new_key_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    uuid::Builder::from_random_bytes(bytes).into_uuid().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kme() -> Kme {
        let config =
            TestKmeConfig { sae_ids: vec!["a".to_owned(), "b".to_owned(), "c".to_owned()], ..TestKmeConfig::default() };
        Kme::new(config)
    }

    fn request(number: u32, size: u32) -> KeyRequest {
        KeyRequest { number: Some(number), size: Some(size), ..KeyRequest::default() }
    }

    #[test]
    fn slave_gets_the_masters_key_once() {
        let kme = kme();
        let issued = kme.enc_keys("a", "b", &request(1, 256)).unwrap();
        let id = issued[0].key_id.clone();

        let first = kme.dec_keys("b", "a", std::slice::from_ref(&id)).unwrap();
        let second = kme.dec_keys("b", "a", std::slice::from_ref(&id));

        assert_eq!(first[0].key, issued[0].key);
        assert_eq!(first[0].key.len(), 32);
        assert!(matches!(second, Err(Rejection::BadRequest { key_ids, .. }) if key_ids == vec![id]));
    }

    #[test]
    fn pending_keys_lower_stored_key_count() {
        let kme = kme();
        let before = kme.status("a", "b").unwrap().stored_key_count;

        kme.enc_keys("a", "b", &request(3, 256)).unwrap();

        assert_eq!(kme.status("a", "b").unwrap().stored_key_count, before - 3);
        assert_eq!(kme.status("a", "c").unwrap().stored_key_count, before);
    }

    #[test]
    fn additional_slave_gets_the_key_too() {
        let kme = kme();
        let mut shared = request(1, 128);
        shared.additional_slave_SAE_IDs = vec!["c".to_owned()];
        let issued = kme.enc_keys("a", "b", &shared).unwrap();
        let id = vec![issued[0].key_id.clone()];

        let for_b = kme.dec_keys("b", "a", &id).unwrap();
        let for_c = kme.dec_keys("c", "a", &id).unwrap();

        assert_eq!(for_b[0].key, for_c[0].key);
    }

    #[test]
    fn failed_batch_delivers_nothing() {
        let kme = kme();
        let issued = kme.enc_keys("a", "b", &request(1, 256)).unwrap();
        let ids = vec![issued[0].key_id.clone(), "no-such-key".to_owned()];

        let batch = kme.dec_keys("b", "a", &ids);
        let alone = kme.dec_keys("b", "a", &ids[..1]);

        assert!(matches!(batch, Err(Rejection::BadRequest { .. })));
        assert!(alone.is_ok(), "the good key must still be in the pool");
    }

    #[test]
    fn pool_limit_answers_unavailable() {
        let config = TestKmeConfig {
            sae_ids: vec!["a".to_owned(), "b".to_owned()],
            max_key_count: 2,
            ..TestKmeConfig::default()
        };
        let kme = Kme::new(config);

        kme.enc_keys("a", "b", &request(2, 256)).unwrap();
        let over = kme.enc_keys("a", "b", &request(1, 256));

        assert!(matches!(over, Err(Rejection::Unavailable(_))));
    }

    #[test]
    fn key_ids_are_version_4_uuids() {
        let id = new_key_id();

        let parsed = uuid::Uuid::parse_str(&id).unwrap();

        assert_eq!(parsed.get_version_num(), 4);
    }
}
