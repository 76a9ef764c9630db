//! IP networks in CIDR notation for source-network rules.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// An IPv4 or IPv6 network, such as `192.168.0.0/16` or `fc00::/7`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNetwork {
    address: IpAddr,
    prefix_len: u8,
}

impl IpNetwork {
    /// Returns the private and local networks of a home LAN: RFC 1918, loopback,
    /// IPv4 and IPv6 link-local, and IPv6 unique local addresses.
    pub fn home_lan() -> Vec<IpNetwork> {
        [
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "127.0.0.0/8",
            "169.254.0.0/16",
            "::1/128",
            "fc00::/7",
            "fe80::/10",
        ]
        .into_iter()
        .map(|text| text.parse().expect("the home LAN networks are valid CIDR"))
        .collect()
    }

    /// Returns whether `address` is in the network. IPv4-mapped IPv6
    /// addresses (`::ffff:a.b.c.d`) match as IPv4.
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.address, address.to_canonical()) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                u32::from(network) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

/// Error from parsing a CIDR network.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid network {found:?}: {problem}; expected CIDR such as 192.168.0.0/16")]
pub struct InvalidNetwork {
    /// The text parsed.
    pub found: String,
    /// Description of the problem.
    pub problem: &'static str,
}

impl FromStr for IpNetwork {
    type Err = InvalidNetwork;

    /// Parses `address/prefix`. Host bits must be zero, so a typo such as
    /// `192.168.1.0/16` is reported instead of silently widened.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = |problem| InvalidNetwork {
            found: text.to_owned(),
            problem,
        };

        let (address, prefix_len) = text.split_once('/').ok_or(invalid("missing /prefix"))?;
        let address: IpAddr = address.parse().map_err(|_| invalid("invalid address"))?;
        let prefix_len: u8 = prefix_len
            .parse()
            .map_err(|_| invalid("invalid prefix length"))?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        if prefix_len > max {
            return Err(invalid("prefix length longer than the address"));
        }

        let host_bits_clear = match address {
            IpAddr::V4(v4) => {
                u32::from(v4)
                    .checked_shl(u32::from(prefix_len))
                    .unwrap_or(0)
                    == 0
            }
            IpAddr::V6(v6) => {
                u128::from(v6)
                    .checked_shl(u32::from(prefix_len))
                    .unwrap_or(0)
                    == 0
            }
        };
        if !host_bits_clear {
            return Err(invalid("host bits set after the prefix"));
        }
        Ok(Self {
            address,
            prefix_len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> IpNetwork {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn ipv4_membership() {
        let lan = net("192.168.1.0/24");

        assert!(lan.contains(ip("192.168.1.0")));
        assert!(lan.contains(ip("192.168.1.255")));
        assert!(!lan.contains(ip("192.168.2.1")));
        assert!(!lan.contains(ip("::1")));
    }

    #[test]
    fn ipv6_membership_and_mapped_ipv4() {
        assert!(net("fc00::/7").contains(ip("fd12:3456::1")));
        assert!(!net("fc00::/7").contains(ip("2001:db8::1")));
        assert!(net("10.0.0.0/8").contains(ip("::ffff:10.1.2.3")));
    }

    #[test]
    fn zero_and_full_prefixes() {
        assert!(net("0.0.0.0/0").contains(ip("8.8.8.8")));
        assert!(net("10.1.2.3/32").contains(ip("10.1.2.3")));
        assert!(!net("10.1.2.3/32").contains(ip("10.1.2.4")));
        assert!(net("::/0").contains(ip("2001:db8::1")));
    }

    #[test]
    fn malformed_networks_rejected() {
        for text in [
            "192.168.0.0",
            "192.168.0.0/33",
            "192.168.1.0/16",
            "fc00::/129",
            "lan/8",
            "10.0.0.0/x",
        ] {
            assert!(text.parse::<IpNetwork>().is_err(), "{text}");
        }
    }

    #[test]
    fn home_lan_excludes_public_addresses() {
        let lan = IpNetwork::home_lan();
        let in_lan = |address| lan.iter().any(|network| network.contains(ip(address)));

        assert!(in_lan("192.168.0.10"));
        assert!(in_lan("fe80::1"));
        assert!(!in_lan("8.8.8.8"));
        assert!(!in_lan("2001:4860:4860::8888"));
        assert!(!in_lan("172.32.0.1"));
    }
}
