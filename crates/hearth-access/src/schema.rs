//! Tables owned by hearth-access.

use hearth_store::Migration;

/// Domain name under which the access migrations are recorded.
pub const DOMAIN: &str = "access";

/// The access schema steps, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "users_devices_audit_throttle",
        sql: r#"
-- Household members. `name_key` is the lowercase name, so that names are
-- unique regardless of case and logins match case-insensitively.
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    did TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL CHECK (role IN ('admin', 'adult', 'teen', 'child')),
    -- Argon2id PHC string; NULL for a user without a password (passkeys only).
    password_hash TEXT,
    created_at INTEGER NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
) STRICT;

-- Paired devices. A device is usable once approved and until revoked.
CREATE TABLE devices (
    id INTEGER PRIMARY KEY,
    did TEXT NOT NULL UNIQUE,
    key_algorithm TEXT NOT NULL CHECK (key_algorithm IN ('p256', 'hybrid')),
    public_key BLOB NOT NULL,
    name TEXT NOT NULL,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    approved INTEGER NOT NULL DEFAULT 0 CHECK (approved IN (0, 1)),
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    last_seen INTEGER
) STRICT;
CREATE INDEX devices_user ON devices(user_id);

-- Every access decision and login attempt, allowed or denied, with its reason.
CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    time INTEGER NOT NULL,
    -- did:key of the user, NULL when no user was authenticated.
    subject TEXT,
    -- did:key of the device, NULL when the request named no known device.
    device TEXT,
    action TEXT NOT NULL,
    resource TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('allow', 'deny')),
    reason TEXT NOT NULL,
    source TEXT NOT NULL
) STRICT;
CREATE INDEX audit_time ON audit(time);
CREATE INDEX audit_subject ON audit(subject, id);

-- Failed login counters, one row per account name and per source network.
CREATE TABLE login_throttle (
    key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL CHECK (failures >= 0),
    last_failure INTEGER NOT NULL
) STRICT;
CREATE INDEX login_throttle_last_failure ON login_throttle(last_failure);
"#,
    },
    Migration {
        version: 2,
        name: "pairing_offers",
        sql: r#"
-- Pairing offers, shared by the server and `hearth pair` on the host, which
-- opens the same file while the server runs. `id` is the b64u offer id.
--
-- `code` is the normalised pairing code, from which both sides derive the
-- SPAKE2 password scalar. It is a secret that pairs for 10 minutes at most.
-- The database file is mode 0600, and the code is set to NULL once the
-- offer is used or burned, and by the next prune after the offer expires.
CREATE TABLE pairing_offers (
    id TEXT PRIMARY KEY,
    code TEXT,
    kind TEXT NOT NULL CHECK (kind IN ('new_user', 'existing_user')),
    -- new_user offers: the role, and the user name unless the person
    -- pairing chooses it (first-run setup).
    new_user_name TEXT,
    new_user_role TEXT CHECK (new_user_role IN ('admin', 'adult', 'teen', 'child')),
    -- existing_user offers: the user who gets the device.
    user_id INTEGER REFERENCES users(id) ON DELETE CASCADE,
    -- 'user' (with created_by_user), 'host_cli' or 'first_run'.
    created_by TEXT NOT NULL CHECK (created_by IN ('user', 'host_cli', 'first_run')),
    created_by_user INTEGER,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    -- Failed confirmations; 5 burn the offer. A confirmation being checked
    -- counts until it turns out right.
    attempts INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    used_at INTEGER,
    CHECK ((kind = 'new_user') = (new_user_role IS NOT NULL AND user_id IS NULL)),
    CHECK ((kind = 'existing_user') = (user_id IS NOT NULL AND new_user_name IS NULL AND new_user_role IS NULL)),
    CHECK ((created_by = 'user') = (created_by_user IS NOT NULL))
) STRICT;
CREATE INDEX pairing_offers_expires_at ON pairing_offers(expires_at);
"#,
    },
    Migration {
        version: 3,
        name: "passkeys",
        sql: r#"
-- WebAuthn credentials (passkeys), the sign-in beside the password.
-- `passkey` is the credential as the server's WebAuthn library serialises
-- it (JSON): the public key, the signature counter and the flags. It holds
-- no secret; the private key never leaves the authenticator.
CREATE TABLE passkeys (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- The authenticator's credential id, unique across the household.
    credential_id BLOB NOT NULL UNIQUE,
    passkey TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used INTEGER,
    -- Signature counter of the last accepted assertion; 0 for
    -- authenticators without one.
    counter INTEGER NOT NULL DEFAULT 0 CHECK (counter >= 0)
) STRICT;
CREATE INDEX passkeys_user ON passkeys(user_id);
"#,
    },
];
