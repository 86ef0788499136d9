//! Network objects: fabrics, VLANs (DHCP on/off, primary rack), subnets and
//! IP ranges.

use serde_json::json;
use tokio_postgres::Row;

use super::sql::Args;
use super::{API, Result, Store, StoreError, invalid};
use crate::maas::types::{Fabric, IpRange, Subnet, Vlan};

/// The VLAN whose columns start at `i` (id, vid, name, fabric name, fabric
/// id, mtu, dhcp_on, primary_rack).
fn vlan_at(r: &Row, i: usize) -> Vlan {
    let id: i64 = r.get(i);
    let vid: i32 = r.get(i + 1);
    let fabric_id: i64 = r.get(i + 4);
    Vlan {
        id,
        vid: vid as u16,
        name: r.get(i + 2),
        fabric: r.get(i + 3),
        fabric_id,
        mtu: r.get::<_, i32>(i + 5) as u32,
        dhcp_on: r.get(i + 6),
        external_dhcp: None,
        primary_rack: r.get(i + 7),
        secondary_rack: None,
        relay_vlan: None,
        space: Some("undefined".into()),
        resource_uri: format!("{API}/vlans/{id}/"),
    }
}

fn subnet_at(r: &Row) -> Subnet {
    let id: i64 = r.get(0);
    Subnet {
        id,
        name: r.get(1),
        cidr: r.get(2),
        gateway_ip: r.get(3),
        dns_servers: serde_json::from_str(r.get::<_, &str>(4)).unwrap_or_default(),
        managed: r.get(5),
        vlan: vlan_at(r, 6),
        active_discovery: false,
        allow_dns: true,
        allow_proxy: true,
        rdns_mode: 2,
        space: Some("undefined".into()),
        resource_uri: format!("{API}/subnets/{id}/"),
    }
}

pub(crate) fn parse_cidr(cidr: &str) -> Option<(u32, u8)> {
    let (ip, len) = cidr.split_once('/')?;
    let ip: std::net::Ipv4Addr = ip.parse().ok()?;
    let len: u8 = len.parse().ok().filter(|l| *l <= 32)?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Some((u32::from(ip) & mask, len))
}

fn contains(net: (u32, u8), ip: std::net::Ipv4Addr) -> bool {
    let mask = if net.1 == 0 {
        0
    } else {
        u32::MAX << (32 - net.1)
    };
    u32::from(ip) & mask == net.0
}

impl Store {
    async fn vlan_rows(&self, filter: &str, args: Args<'_>) -> Result<Vec<Vlan>> {
        self.rows(
            "reading VLANs",
            &format!(
                "SELECT v.id, v.vid, v.name, f.name, f.id, v.mtu, v.dhcp_on, v.primary_rack
                 FROM vlans v JOIN fabrics f ON f.id = v.fabric_id {filter} ORDER BY v.id"
            ),
            args,
            |r| vlan_at(r, 0),
        )
        .await
    }

    pub async fn fabrics(&self) -> Result<Vec<Fabric>> {
        let rows = self
            .rows(
                "reading fabrics",
                "SELECT id, name, class_type FROM fabrics ORDER BY id",
                &[],
                |r| (r.get::<_, i64>(0), r.get(1), r.get(2)),
            )
            .await?;
        let mut out = Vec::new();
        for (id, name, class_type) in rows {
            out.push(Fabric {
                id,
                name,
                class_type,
                vlans: self.vlan_rows("WHERE f.id = $1", &[&id]).await?,
                resource_uri: format!("{API}/fabrics/{id}/"),
            });
        }
        Ok(out)
    }

    pub async fn vlans(&self, fabric_id: i64) -> Result<Vec<Vlan>> {
        self.vlan_rows("WHERE f.id = $1", &[&fabric_id]).await
    }

    /// PUT fabrics/{f}/vlans/{vid}/: dhcp_on and primary_rack.
    pub async fn update_vlan(
        &self,
        fabric_id: i64,
        vid: i32,
        dhcp_on: Option<bool>,
        primary_rack: Option<String>,
    ) -> Result<Vlan> {
        if dhcp_on == Some(true) && primary_rack.is_none() {
            let current = self
                .vlan_rows("WHERE f.id = $1 AND v.vid = $2", &[&fabric_id, &vid])
                .await?;
            if current.first().is_some_and(|v| v.primary_rack.is_none()) {
                return Err(invalid(
                    "dhcp_on",
                    "dhcp can only be turned on when a primary rack controller is set.",
                ));
            }
        }
        if let Some(rack) = &primary_rack {
            let known = self
                .opt(
                    "checking a rack",
                    "SELECT 1 FROM rack_controllers WHERE system_id = $1",
                    &[rack],
                    |_| (),
                )
                .await?;
            if known.is_none() {
                return Err(invalid(
                    "primary_rack",
                    format!("Select a valid choice. {rack} is not one of the available choices."),
                ));
            }
        }
        let n = self
            .exec(
                "updating a VLAN",
                "UPDATE vlans SET dhcp_on = COALESCE($3, dhcp_on), primary_rack = COALESCE($4, primary_rack)
                 WHERE fabric_id = $1 AND vid = $2",
                &[&fabric_id, &vid, &dhcp_on, &primary_rack],
            )
            .await?;
        if n == 0 {
            return Err(StoreError::NotFound(format!(
                "No VLAN matches the given query (fabric {fabric_id}, vid {vid})."
            )));
        }
        Ok(self
            .vlan_rows("WHERE f.id = $1 AND v.vid = $2", &[&fabric_id, &vid])
            .await?
            .remove(0))
    }

    async fn subnet_rows(&self, filter: &str, args: Args<'_>) -> Result<Vec<Subnet>> {
        self.rows(
            "reading subnets",
            &format!(
                "SELECT s.id, s.name, s.cidr, s.gateway_ip, s.dns_servers::text, s.managed,
                        v.id, v.vid, v.name, f.name, f.id, v.mtu, v.dhcp_on, v.primary_rack
                 FROM subnets s JOIN vlans v ON v.id = s.vlan_id JOIN fabrics f ON f.id = v.fabric_id {filter} ORDER BY s.id"
            ),
            args,
            subnet_at,
        )
        .await
    }

    pub async fn subnets(&self) -> Result<Vec<Subnet>> {
        self.subnet_rows("", &[]).await
    }

    /// POST subnets/: cidr required; fabric/vid default to fabric-0 untagged.
    pub async fn create_subnet(
        &self,
        cidr: &str,
        fabric_id: Option<i64>,
        vid: Option<i32>,
        gateway_ip: Option<&str>,
    ) -> Result<Subnet> {
        let net = parse_cidr(cidr).ok_or_else(|| {
            invalid(
                "cidr",
                format!("Required format: <network>/<prefixlen>, got '{cidr}'."),
            )
        })?;
        let vlan_id: i64 = self
            .opt(
                "finding a VLAN",
                "SELECT v.id FROM vlans v JOIN fabrics f ON f.id = v.fabric_id
                 WHERE ($1::bigint IS NULL AND f.name = 'fabric-0' OR f.id = $1) AND v.vid = $2",
                &[&fabric_id, &vid.unwrap_or(0)],
                |r| r.get(0),
            )
            .await?
            .ok_or_else(|| invalid("vlan", "no such fabric/VLAN"))?;
        let canonical = format!("{}/{}", std::net::Ipv4Addr::from(net.0), net.1);
        // ON CONFLICT DO NOTHING returns no row: that is the duplicate.
        let id: i64 = self
            .one(
                "creating a subnet",
                "INSERT INTO subnets (name, cidr, vlan_id, gateway_ip) VALUES ($1, $1, $2, $3)
                 ON CONFLICT (cidr) DO NOTHING RETURNING id",
                &[&canonical, &vlan_id, &gateway_ip],
                |r| r.get(0),
            )
            .await
            .map_err(|_| {
                invalid(
                    "cidr",
                    format!("Subnet with this Cidr already exists ({canonical})."),
                )
            })?;
        Ok(self.subnet_rows("WHERE s.id = $1", &[&id]).await?.remove(0))
    }

    async fn range_rows(&self, filter: &str, args: Args<'_>) -> Result<Vec<IpRange>> {
        let rows = self
            .rows(
                "reading IP ranges",
                &format!("SELECT id, type, start_ip, end_ip, comment, subnet_id FROM ipranges {filter} ORDER BY id"),
                args,
                |r| {
                    (
                        r.get::<_, i64>(0),
                        r.get::<_, String>(1),
                        r.get::<_, String>(2),
                        r.get::<_, String>(3),
                        r.get::<_, String>(4),
                        r.get::<_, i64>(5),
                    )
                },
            )
            .await?;
        let mut out = Vec::new();
        for (id, range_type, start_ip, end_ip, comment, subnet_id) in rows {
            let subnet = self
                .subnet_rows("WHERE s.id = $1", &[&subnet_id])
                .await?
                .remove(0);
            out.push(IpRange {
                id,
                range_type,
                start_ip,
                end_ip,
                comment,
                subnet,
                user: json!({"username": "admin", "is_superuser": true, "resource_uri": format!("{API}/users/admin/")}),
                resource_uri: format!("{API}/ipranges/{id}/"),
            });
        }
        Ok(out)
    }

    pub async fn ip_ranges(&self) -> Result<Vec<IpRange>> {
        self.range_rows("", &[]).await
    }

    /// POST ipranges/: the subnet is the one containing both ends.
    pub async fn create_ip_range(
        &self,
        range_type: &str,
        start: &str,
        end: &str,
        comment: &str,
    ) -> Result<IpRange> {
        if range_type != "dynamic" && range_type != "reserved" {
            return Err(invalid(
                "type",
                format!("Select a valid choice. {range_type} is not one of the available choices."),
            ));
        }
        let s: std::net::Ipv4Addr = start
            .parse()
            .map_err(|_| invalid("start_ip", format!("Enter a valid IPv4 address ({start}).")))?;
        let e: std::net::Ipv4Addr = end
            .parse()
            .map_err(|_| invalid("end_ip", format!("Enter a valid IPv4 address ({end}).")))?;
        if u32::from(s) > u32::from(e) {
            return Err(invalid(
                "end_ip",
                "End IP address must not be less than Start IP address.",
            ));
        }
        let subnets = self.subnets().await?;
        let subnet = subnets
            .iter()
            .find(|sn| parse_cidr(&sn.cidr).is_some_and(|net| contains(net, s) && contains(net, e)))
            .ok_or_else(|| {
                invalid(
                    "subnet",
                    format!("No subnet contains {start}-{end}; create the subnet first."),
                )
            })?;
        let id: i64 = self
            .one(
                "creating an IP range",
                "INSERT INTO ipranges (type, start_ip, end_ip, subnet_id, comment) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[&range_type, &start, &end, &subnet.id, &comment],
                |r| r.get(0),
            )
            .await?;
        Ok(self.range_rows("WHERE id = $1", &[&id]).await?.remove(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_containment() {
        let net = parse_cidr("10.9.0.0/24").unwrap();
        assert!(contains(net, "10.9.0.200".parse().unwrap()));
        assert!(!contains(net, "10.9.1.1".parse().unwrap()));
        assert_eq!(parse_cidr("10.9.0.7/24").unwrap(), net);
    }
}
