//! The guard's bans in the kernel's firewall, with `[guard] nftables = true`.
//!
//! The accept loop already closes a banned address's connections before
//! TLS, but only after the kernel has completed the TCP handshake. With this
//! option the server also keeps the banned addresses in two nftables sets,
//! and a rule drops their packets to the server's port before they reach
//! the socket. It needs root (CAP_NET_ADMIN) and the `nft` command (Debian
//! package nftables).
//!
//! The server owns the table `inet hearth_guard` and replaces it whole at
//! start. Set elements carry the ban's timeout, so the kernel lifts an
//! ended ban by itself. The table stays after the server stops, so bans
//! keep holding while it restarts; `nft delete table inet hearth_guard`
//! removes it.

use std::io::Write as _;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Name of the nftables table the server owns.
pub const TABLE: &str = "hearth_guard";

/// A change to the sets, carried out in order by the worker thread.
enum Change {
    Ban(IpAddr, Duration),
    Unban(IpAddr),
}

/// The firewall sets of one server. Changes go to a worker thread, so a ban
/// never waits for `nft` in the request path.
#[derive(Debug)]
pub struct Firewall {
    changes: mpsc::Sender<Change>,
}

impl std::fmt::Debug for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Ban(source, duration) => write!(f, "ban {source} for {} s", duration.as_secs()),
            Change::Unban(source) => write!(f, "unban {source}"),
        }
    }
}

impl Firewall {
    /// Replaces the table `inet hearth_guard` with empty sets and a rule
    /// that drops TCP packets from them to `port`.
    pub fn install(port: u16) -> anyhow::Result<Firewall> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            anyhow::bail!(
                "[guard] nftables = true needs the server to run as root (CAP_NET_ADMIN); run it as root or set nftables = false"
            );
        }
        let script = format!(
            "add table inet {TABLE}\n\
             delete table inet {TABLE}\n\
             table inet {TABLE} {{\n\
               set banned4 {{ type ipv4_addr; flags timeout; }}\n\
               set banned6 {{ type ipv6_addr; flags timeout; }}\n\
               chain input {{\n\
                 type filter hook input priority -10; policy accept;\n\
                 ip saddr @banned4 tcp dport {port} drop\n\
                 ip6 saddr @banned6 tcp dport {port} drop\n\
               }}\n\
             }}\n"
        );
        run_nft(&script).map_err(|error| anyhow::anyhow!("failed to install the nftables table inet {TABLE}: {error}"))?;
        tracing::info!(table = TABLE, port, "guard bans are also enforced by nftables");

        let (changes, received) = mpsc::channel::<Change>();
        std::thread::Builder::new().name("guard-nftables".to_owned()).spawn(move || {
            for change in received {
                if let Err(error) = run_nft(&change_script(&change)) {
                    // Unbanning an address the kernel already let go is no error.
                    if !matches!(change, Change::Unban(_)) {
                        tracing::warn!(change = ?change, error = %error, "failed to update the guard's nftables set");
                    }
                }
            }
        })?;
        Ok(Firewall { changes })
    }

    /// Adds `source` to the banned set for `duration`.
    pub fn ban(&self, source: IpAddr, duration: Duration) {
        let _ = self.changes.send(Change::Ban(source, duration));
    }

    /// Removes `source` from the banned set.
    pub fn unban(&self, source: IpAddr) {
        let _ = self.changes.send(Change::Unban(source));
    }
}

fn set_of(source: IpAddr) -> &'static str {
    match source {
        IpAddr::V4(_) => "banned4",
        IpAddr::V6(_) => "banned6",
    }
}

fn change_script(change: &Change) -> String {
    match change {
        // An element that is already there keeps its old timeout, so it is
        // removed first; the script applies both lines atomically.
        Change::Ban(source, duration) => {
            let set = set_of(*source);
            let seconds = duration.as_secs().max(1);
            format!(
                "add element inet {TABLE} {set} {{ {source} timeout 1s }}\n\
                 delete element inet {TABLE} {set} {{ {source} }}\n\
                 add element inet {TABLE} {set} {{ {source} timeout {seconds}s }}\n"
            )
        }
        Change::Unban(source) => format!("delete element inet {TABLE} {} {{ {source} }}\n", set_of(*source)),
    }
}

/// Runs `nft -f -` with `script` on its standard input.
fn run_nft(script: &str) -> Result<(), String> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("could not run nft ({error}); install the nftables package"))?;
    child.stdin.take().expect("stdin is piped").write_all(script.as_bytes()).map_err(|error| error.to_string())?;
    let output = child.wait_with_output().map_err(|error| error.to_string())?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("nft exited with {}: {}", output.status, String::from_utf8_lossy(&output.stderr).trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_name_the_right_set() {
        let ban = change_script(&Change::Ban("192.0.2.7".parse().unwrap(), Duration::from_secs(3600)));
        assert!(ban.ends_with("add element inet hearth_guard banned4 { 192.0.2.7 timeout 3600s }\n"), "{ban}");
        let unban = change_script(&Change::Unban("2001:db8::7".parse().unwrap()));
        assert_eq!(unban, "delete element inet hearth_guard banned6 { 2001:db8::7 }\n");
    }
}
