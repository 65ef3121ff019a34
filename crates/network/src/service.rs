//! The network service state: the store, the bus for change events and the settings parsed
//! from the `[network]` configuration.

use crate::db::Db;
use ferrostack_bus::MessageBus;
use ferrostack_config::NetworkConfig;
use ferrostack_store::Store;
use std::collections::BTreeMap;
use std::sync::Arc;

/// VXLAN's encapsulation overhead over IPv4 (Neutron's `VXLAN_ENCAP_OVERHEAD`).
pub const VXLAN_OVERHEAD: i64 = 50;

/// The `[network]` settings, parsed and checked once.
#[derive(Debug, Clone)]
pub struct Settings {
    /// VNI ranges, both ends included.
    pub vni_ranges: Vec<(i64, i64)>,
    /// Physical network → host interface or bridge.
    pub physical_networks: BTreeMap<String, String>,
    /// Physical network → VLAN ranges for tenant networks.
    pub vlan_ranges: BTreeMap<String, Vec<(i64, i64)>>,
    /// Segment types of tenant networks, in order of preference.
    pub tenant_network_types: Vec<String>,
    /// The physical MTU.
    pub physnet_mtu: i64,
    /// The MAC prefix.
    pub base_mac: String,
    /// Most fixed IPs per port.
    pub max_fixed_ips_per_port: usize,
    /// Default quota of each resource.
    pub quota_defaults: BTreeMap<&'static str, i64>,
}

fn parse_range(text: &str, what: &str, lo: i64, hi: i64) -> anyhow::Result<(i64, i64)> {
    let (a, b) = text
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("{what} range {text:?}: expected MIN:MAX"))?;
    let a: i64 = a.trim().parse()?;
    let b: i64 = b.trim().parse()?;
    if a > b || a < lo || b > hi {
        anyhow::bail!("{what} range {text:?}: must be within {lo}..{hi}, MIN <= MAX");
    }
    Ok((a, b))
}

impl Settings {
    /// Parses and checks the configuration.
    pub fn from_config(config: &NetworkConfig) -> anyhow::Result<Settings> {
        let vni_ranges = config
            .vni_ranges
            .iter()
            .map(|r| parse_range(r, "VNI", 1, (1 << 24) - 1))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut vlan_ranges: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
        for entry in &config.network_vlan_ranges {
            match entry.split_once(':') {
                None => {
                    vlan_ranges.entry(entry.clone()).or_default();
                }
                Some((physnet, range)) => vlan_ranges
                    .entry(physnet.to_string())
                    .or_default()
                    .push(parse_range(range, "VLAN", 1, 4094)?),
            }
        }
        for physnet in vlan_ranges.keys() {
            if !config.physical_interface_mappings.contains_key(physnet) {
                anyhow::bail!(
                    "network_vlan_ranges names {physnet:?}, which physical_interface_mappings does not map"
                );
            }
        }
        for t in &config.tenant_network_types {
            if !matches!(t.as_str(), "vxlan" | "vlan") {
                anyhow::bail!("tenant_network_types: {t:?} is not vxlan or vlan");
            }
        }
        if crate::ipam::canonical_mac(&config.base_mac).is_none()
            && !config.base_mac.starts_with("fa:16:3e")
        {
            anyhow::bail!("base_mac {:?} is not a MAC address", config.base_mac);
        }
        let quota_defaults = BTreeMap::from([
            ("network", config.quota_network),
            ("subnet", config.quota_subnet),
            ("port", config.quota_port),
            ("router", config.quota_router),
            ("floatingip", config.quota_floatingip),
            ("security_group", config.quota_security_group),
            ("security_group_rule", config.quota_security_group_rule),
            ("subnetpool", config.quota_subnetpool),
        ]);
        Ok(Settings {
            vni_ranges,
            physical_networks: config.physical_interface_mappings.clone(),
            vlan_ranges,
            tenant_network_types: config.tenant_network_types.clone(),
            physnet_mtu: config.global_physnet_mtu.into(),
            base_mac: config.base_mac.clone(),
            max_fixed_ips_per_port: config.max_fixed_ips_per_port,
            quota_defaults,
        })
    }

    /// The largest MTU a network of `network_type` can have.
    pub fn max_mtu(&self, network_type: &str) -> i64 {
        match network_type {
            "vxlan" => self.physnet_mtu - VXLAN_OVERHEAD,
            _ => self.physnet_mtu,
        }
    }
}

/// The network service.
pub struct Networking {
    pub(crate) db: Db,
    pub(crate) settings: Settings,
    pub(crate) public_url: String,
    /// Tells the compute service when what a server sees of its ports changes.
    compute_notifier: std::sync::OnceLock<Arc<dyn crate::agents::VifNotifier>>,
}

impl Networking {
    /// Migrates the network tables and checks the settings.
    pub async fn open(
        store: Store,
        public_url: &str,
        bus: Arc<dyn MessageBus>,
        config: &NetworkConfig,
    ) -> anyhow::Result<Arc<Networking>> {
        let settings = Settings::from_config(config)?;
        store.migrate("network", crate::MIGRATIONS).await?;
        Ok(Arc::new(Networking {
            db: Db::new(store, bus),
            settings,
            public_url: public_url.trim_end_matches('/').to_string(),
            compute_notifier: std::sync::OnceLock::new(),
        }))
    }

    /// `<public url>/networking`.
    pub fn base_url(&self) -> String {
        format!("{}/networking", self.public_url)
    }

    /// The database handle (the agents' queries live in [`crate::db`]).
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The parsed settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Sets who hears of changes to servers' ports (once; later calls are ignored).
    pub fn set_compute_notifier(&self, notifier: Arc<dyn crate::agents::VifNotifier>) {
        let _ = self.compute_notifier.set(notifier);
    }

    /// Sends `network-changed` for each of `ports` that belongs to a server (Neutron's
    /// `send_network_change`), in the background: the caller's request does not wait for
    /// the compute service.
    pub(crate) async fn network_changed(&self, ports: &[Option<&str>]) {
        let Some(notifier) = self.compute_notifier.get() else {
            return;
        };
        let mut seen = Vec::new();
        for id in ports.iter().flatten() {
            if seen.contains(id) {
                continue;
            }
            seen.push(*id);
            let port: Option<crate::model::Port> = match self.db.get(id).await {
                Ok(port) => port,
                Err(e) => {
                    tracing::warn!(port = id, error = ?e, "network-changed: reading the port");
                    continue;
                }
            };
            let Some(port) =
                port.filter(|p| p.device_owner.starts_with("compute:") && !p.device_id.is_empty())
            else {
                continue;
            };
            let notifier = notifier.clone();
            tokio::spawn(async move {
                notifier.network_changed(&port.device_id, &port.id).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_and_refuse_nonsense() {
        let s = Settings::from_config(&NetworkConfig::default()).unwrap();
        assert_eq!(s.vni_ranges, vec![(1, 1000)]);
        assert_eq!(s.max_mtu("vxlan"), 1450);
        assert_eq!(s.max_mtu("flat"), 1500);
        let bad = NetworkConfig {
            vni_ranges: vec!["10:1".into()],
            ..Default::default()
        };
        assert!(Settings::from_config(&bad).is_err());
        let unmapped = NetworkConfig {
            network_vlan_ranges: vec!["physnet9:1:10".into()],
            ..Default::default()
        };
        assert!(Settings::from_config(&unmapped).is_err());
        let vlans = NetworkConfig {
            network_vlan_ranges: vec!["public:100:199".into(), "public".into()],
            ..Default::default()
        };
        let s = Settings::from_config(&vlans).unwrap();
        assert_eq!(s.vlan_ranges["public"], vec![(100, 199)]);
    }
}
