//! Compute's view of the networking service ([`NetworkApi`]), served by the in-process
//! Neutron store: what Nova's `network/neutron.py` asks Neutron for, with Nova's errors. Port
//! writes go through the networking store's own operations (IPAM, quotas, the events the
//! network agents follow), never around them.

use ferrostack_api::ApiError;
use ferrostack_compute::network::{
    FloatingIpInfo, NetworkApi, NetworkRequest, PortOwner, RequestedNic, ResolvedNetworks, Vif,
    VifIp,
};
use ferrostack_network::Networking;
use ferrostack_network::db::floatingips::{self, FloatingIpUpdate};
use ferrostack_network::db::ports::{self, IpRequest, PortRequest, PortUpdate};
use ferrostack_network::db::{self, write_tx};
use ferrostack_network::model::{Binding, FloatingIp, Network, Port, SecurityGroup, Subnet};
use std::collections::HashMap;
use std::sync::Arc;

/// [`NetworkApi`] over the networking service of this process.
pub struct LocalNetwork {
    net: Arc<Networking>,
}

impl LocalNetwork {
    pub fn new(net: Arc<Networking>) -> Self {
        LocalNetwork { net }
    }
}

fn db_error(e: db::Error) -> anyhow::Error {
    match e {
        db::Error::Api(e) => anyhow::anyhow!("{}", e.message),
        db::Error::Db(e) => anyhow::Error::new(e),
    }
}

fn internal(e: db::Error) -> ApiError {
    ApiError::internal(db_error(e))
}

/// `column IN ($1, ..., $n)` for `n` binds.
fn any_of(column: &str, n: usize) -> String {
    let params: Vec<String> = (1..=n).map(|i| format!("${i}")).collect();
    format!("{column} IN ({})", params.join(", "))
}

impl LocalNetwork {
    async fn network(&self, id: &str) -> Result<Option<Network>, ApiError> {
        self.net.db().get(id).await.map_err(internal)
    }

    async fn port(&self, id: &str) -> anyhow::Result<Option<Port>> {
        self.net.db().get(id).await.map_err(db_error)
    }

    /// Nova's `_get_available_networks` for `auto`: the project's own networks, else the
    /// shared ones; never an external network.
    async fn auto_network(&self, project: &str) -> Result<Option<String>, ApiError> {
        let all: Vec<Network> = self.net.db().select("1 = 1", &[]).await.map_err(internal)?;
        let candidates = |own: bool| -> Vec<&Network> {
            all.iter()
                .filter(|n| !n.external)
                .filter(|n| match own {
                    true => n.project_id == project && !n.shared,
                    false => n.shared,
                })
                .collect()
        };
        let mut found = candidates(true);
        if found.is_empty() {
            found = candidates(false);
        }
        match found.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(one.id.clone())),
            _ => Err(ApiError::conflict(
                "Multiple possible networks found, use a Network ID to be more specific.",
            )),
        }
    }

    /// A requested network as Nova checks it: visible, not external unless the caller is an
    /// admin, with a subnet.
    async fn check_network(&self, id: &str, project: &str, admin: bool) -> Result<(), ApiError> {
        let not_found = || ApiError::bad_request(format!("Network {id} could not be found."));
        let network = self.network(id).await?.ok_or_else(not_found)?;
        if !admin && !network.shared && network.project_id != project {
            if network.external {
                return Err(ApiError::forbidden(format!(
                    "It is not allowed to create an interface on external network {id}"
                )));
            }
            return Err(not_found());
        }
        let subnets: Vec<Subnet> = self
            .net
            .db()
            .select("network_id = $1", &[id])
            .await
            .map_err(internal)?;
        if subnets.is_empty() {
            return Err(ApiError::bad_request(format!(
                "Network {id} requires a subnet in order to boot instances on."
            )));
        }
        Ok(())
    }

    /// A requested port: the caller's (or any, for an admin) and not in use.
    async fn check_port(&self, id: &str, project: &str, admin: bool) -> Result<(), ApiError> {
        let port = self.port(id).await.map_err(ApiError::internal)?;
        let Some(port) = port.filter(|p| admin || p.project_id == project) else {
            return Err(ApiError::bad_request(format!(
                "Port {id} could not be found."
            )));
        };
        if !port.device_id.is_empty() {
            return Err(ApiError::conflict(format!("Port {id} is still in use.")));
        }
        Ok(())
    }

    /// Security groups named (by name or id) for a server's ports, as Nova resolves them: the
    /// project's (an admin's names may also be ids of any project).
    async fn security_groups(
        &self,
        project: &str,
        admin: bool,
        names: &[String],
    ) -> Result<Vec<String>, ApiError> {
        let mut ids = Vec::new();
        for name in names {
            let groups: Vec<SecurityGroup> = self
                .net
                .db()
                .select(
                    "id = $1 OR (project_id = $2 AND name = $1)",
                    &[name, project],
                )
                .await
                .map_err(internal)?;
            let by_id = groups
                .iter()
                .find(|g| &g.id == name && (admin || g.project_id == project));
            let by_name: Vec<&SecurityGroup> = groups
                .iter()
                .filter(|g| &g.name == name && g.project_id == project)
                .collect();
            let id = match (by_id, by_name.as_slice()) {
                (Some(g), _) => g.id.clone(),
                (None, [one]) => one.id.clone(),
                (None, []) => {
                    return Err(ApiError::bad_request(format!(
                        "Security group {name} not found for project {project}."
                    )));
                }
                (None, _) => {
                    return Err(ApiError::conflict(format!(
                        "Multiple security groups found matching '{name}'. Use an ID to be more specific."
                    )));
                }
            };
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// The vif with the port's details: network name and MTU, addresses with their subnets.
    async fn describe(&self, vif: &Vif, port: &Port) -> anyhow::Result<Vif> {
        let network = self
            .network(&port.network_id)
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))?
            .ok_or_else(|| anyhow::anyhow!("network {} is gone", port.network_id))?;
        let floating: Vec<FloatingIp> = self
            .net
            .db()
            .select("fixed_port_id = $1", &[&port.id])
            .await
            .map_err(db_error)?;
        let mut fixed_ips = Vec::new();
        for ip in &port.fixed_ips {
            let subnet: Option<Subnet> =
                self.net.db().get(&ip.subnet_id).await.map_err(db_error)?;
            let Some(subnet) = subnet else { continue };
            fixed_ips.push(VifIp {
                address: ip.ip_address.clone(),
                version: subnet.ip_version,
                subnet_id: subnet.id.clone(),
                cidr: subnet.cidr.clone(),
                gateway: subnet.gateway_ip.clone(),
                dns_nameservers: subnet.dns_nameservers.clone(),
                dhcp: subnet.enable_dhcp,
                floating_ips: floating
                    .iter()
                    .filter(|f| f.fixed_ip_address.as_deref() == Some(ip.ip_address.as_str()))
                    .map(|f| f.floating_ip_address.clone())
                    .collect(),
            });
        }
        Ok(Vif {
            port_id: port.id.clone(),
            network_id: port.network_id.clone(),
            created: vif.created,
            fixed_ip: vif.fixed_ip.clone(),
            security_groups: vif.security_groups.clone(),
            network_name: network.name.clone(),
            mac_address: port.mac_address.clone(),
            mtu: u32::try_from(network.mtu).ok().filter(|m| *m > 0),
            fixed_ips,
        })
    }

    /// Creates the planned port of `vif` (id chosen by compute) on its network.
    async fn create_port(&self, vif: &Vif, owner: &PortOwner) -> anyhow::Result<Port> {
        let network = self
            .network(&vif.network_id)
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message))?
            .ok_or_else(|| anyhow::anyhow!("Network {} could not be found.", vif.network_id))?;
        let security_groups = match network.port_security_enabled {
            true if !vif.security_groups.is_empty() => vif.security_groups.clone(),
            true => vec![
                db::security_groups::ensure_default(self.net.db(), &owner.project_id)
                    .await
                    .map_err(db_error)?,
            ],
            false => Vec::new(),
        };
        let ts = ferrostack_network::model::now();
        let mut port = Port {
            id: vif.port_id.clone(),
            project_id: owner.project_id.clone(),
            network_id: network.id.clone(),
            name: String::new(),
            description: String::new(),
            admin_state_up: true,
            status: "DOWN".into(),
            mac_address: String::new(),
            fixed_ips: Vec::new(),
            device_id: owner.server_uuid.clone(),
            device_owner: owner.device_owner.clone(),
            binding: Binding::default(),
            security_groups,
            allowed_address_pairs: Vec::new(),
            port_security_enabled: network.port_security_enabled,
            tags: Vec::new(),
            created_at: ts.clone(),
            updated_at: ts,
            revision_number: 1,
        };
        ports::bind(&mut port, &owner.host);
        let fixed_ips = match &vif.fixed_ip {
            Some(ip) => Some(vec![IpRequest {
                subnet_id: None,
                ip_address: Some(ip.parse()?),
            }]),
            None => None,
        };
        let request = PortRequest {
            port,
            fixed_ips,
            internal: false,
        };
        let settings = self.net.settings();
        write_tx!(self.net.db(), |tx| ports::create(tx, settings, &request)
            .await)
        .map_err(db_error)
    }
}

#[async_trait::async_trait]
impl NetworkApi for LocalNetwork {
    async fn resolve(
        &self,
        project: &str,
        admin: bool,
        request: &NetworkRequest,
        security_groups: &[String],
    ) -> Result<ResolvedNetworks, ApiError> {
        let security_groups = self
            .security_groups(project, admin, security_groups)
            .await?;
        let nics = match request {
            NetworkRequest::None => return Ok(ResolvedNetworks::default()),
            NetworkRequest::Auto => match self.auto_network(project).await? {
                Some(id) => vec![RequestedNic {
                    network_id: Some(id),
                    ..Default::default()
                }],
                None => return Ok(ResolvedNetworks::default()),
            },
            NetworkRequest::List(nics) => nics.clone(),
        };
        let mut seen_ports = Vec::new();
        for nic in &nics {
            match (&nic.port_id, &nic.network_id) {
                (Some(port), _) => {
                    if seen_ports.contains(port) {
                        return Err(ApiError::bad_request(format!(
                            "Port ID {port} is specified more than once."
                        )));
                    }
                    seen_ports.push(port.clone());
                    self.check_port(port, project, admin).await?;
                }
                (None, Some(network)) => self.check_network(network, project, admin).await?,
                (None, None) => {
                    return Err(ApiError::bad_request("Bad network format: missing 'uuid'"));
                }
            }
        }
        // A port brings its network.
        let mut resolved = Vec::new();
        for nic in nics {
            let mut nic = nic;
            if let Some(port) = &nic.port_id {
                let found = self.port(port).await.map_err(ApiError::internal)?;
                nic.network_id = found.map(|p| p.network_id);
            }
            resolved.push(nic);
        }
        Ok(ResolvedNetworks {
            nics: resolved,
            security_groups,
        })
    }

    async fn bind(&self, vif: &Vif, owner: &PortOwner) -> anyhow::Result<Vif> {
        let existing = self.port(&vif.port_id).await?;
        let port = match existing {
            None if vif.created => self.create_port(vif, owner).await?,
            None => anyhow::bail!("Port {} could not be found.", vif.port_id),
            Some(port) => {
                if !port.device_id.is_empty() && port.device_id != owner.server_uuid {
                    anyhow::bail!("Port {} is still in use.", port.id);
                }
                let bound = port.device_id == owner.server_uuid
                    && port.device_owner == owner.device_owner
                    && port.binding.host_id == owner.host;
                match bound {
                    true => port,
                    false => {
                        let change = PortUpdate {
                            device_id: Some(owner.server_uuid.clone()),
                            device_owner: Some(owner.device_owner.clone()),
                            host_id: Some(owner.host.clone()),
                            ..Default::default()
                        };
                        let settings = self.net.settings();
                        write_tx!(self.net.db(), |tx| ports::update(
                            tx, settings, &port.id, &change, None
                        )
                        .await)
                        .map_err(db_error)?
                    }
                }
            }
        };
        self.describe(vif, &port).await
    }

    async fn release(&self, server_uuid: &str, vifs: &[Vif]) -> anyhow::Result<()> {
        let settings = self.net.settings();
        for vif in vifs {
            let Some(port) = self.port(&vif.port_id).await? else {
                continue;
            };
            // Taken over by something else meanwhile: not ours to touch.
            if !port.device_id.is_empty() && port.device_id != server_uuid {
                continue;
            }
            let outcome = match vif.created {
                true => write_tx!(self.net.db(), |tx| ports::delete(tx, &port.id, None).await)
                    .map(|_| ()),
                false => {
                    let change = PortUpdate {
                        device_id: Some(String::new()),
                        device_owner: Some(String::new()),
                        host_id: Some(String::new()),
                        ..Default::default()
                    };
                    write_tx!(self.net.db(), |tx| ports::update(
                        tx, settings, &port.id, &change, None
                    )
                    .await)
                    .map(|_| ())
                }
            };
            match outcome {
                Ok(()) => {
                    tracing::info!(port = %port.id, server = server_uuid, deleted = vif.created, "port released")
                }
                Err(db::Error::Api(e)) if e.status == axum::http::StatusCode::NOT_FOUND => {}
                Err(e) => return Err(db_error(e)),
            }
        }
        Ok(())
    }

    async fn change_security_group(
        &self,
        project: &str,
        admin: bool,
        server_uuid: &str,
        vifs: &[Vif],
        group: &str,
        add: bool,
    ) -> Result<(), ApiError> {
        let id = match self
            .security_groups(project, admin, &[group.to_string()])
            .await
        {
            Ok(ids) => ids.into_iter().next().unwrap_or_default(),
            // Nova answers an unknown group of these actions with 404.
            Err(e) if e.status == axum::http::StatusCode::BAD_REQUEST => {
                return Err(ApiError::not_found(format!(
                    "Security group {group} not found for project {project}."
                )));
            }
            Err(e) => return Err(e),
        };
        let mut ports = Vec::new();
        for vif in vifs {
            let port = self.port(&vif.port_id).await.map_err(ApiError::internal)?;
            if let Some(port) = port.filter(|p| p.device_id == server_uuid) {
                ports.push(port);
            }
        }
        if ports.is_empty() {
            return Err(ApiError::not_found(format!(
                "instance_id {server_uuid} could not be found as device id on any ports"
            )));
        }
        if add && ports.iter().any(|p| !p.port_security_enabled) {
            return Err(ApiError::bad_request(
                "Network requires port_security_enabled and subnet associated in order to apply security groups.",
            ));
        }
        let holding = ports.iter().any(|p| p.security_groups.contains(&id));
        match (add, holding) {
            (true, true) => {
                return Err(ApiError::bad_request(format!(
                    "Security group {group} is already associated with the instance {server_uuid}"
                )));
            }
            (false, false) => {
                return Err(ApiError::bad_request(format!(
                    "Security group {group} not associated with the instance {server_uuid}"
                )));
            }
            _ => {}
        }
        let settings = self.net.settings();
        for port in ports {
            let mut groups = port.security_groups.clone();
            match add {
                true if !groups.contains(&id) => groups.push(id.clone()),
                true => continue,
                false => groups.retain(|g| g != &id),
            }
            let change = PortUpdate {
                security_groups: Some(groups),
                ..Default::default()
            };
            write_tx!(self.net.db(), |tx| ports::update(
                tx, settings, &port.id, &change, None
            )
            .await)
            .map_err(internal)?;
        }
        Ok(())
    }

    async fn pending(&self, port_ids: &[String]) -> anyhow::Result<Vec<String>> {
        let mut pending = Vec::new();
        for id in port_ids {
            let active = self.port(id).await?.is_some_and(|p| p.status == "ACTIVE");
            if !active {
                pending.push(id.clone());
            }
        }
        Ok(pending)
    }

    async fn refresh(&self, server_uuid: &str, vifs: &[Vif]) -> anyhow::Result<Vec<Vif>> {
        let mut refreshed = Vec::with_capacity(vifs.len());
        for vif in vifs {
            let port = match vif.bound() {
                true => self.port(&vif.port_id).await?,
                false => None,
            };
            refreshed.push(match port.filter(|p| p.device_id == server_uuid) {
                Some(port) => self.describe(vif, &port).await?,
                None => vif.clone(),
            });
        }
        Ok(refreshed)
    }

    async fn security_group_names(
        &self,
        server_uuids: &[&str],
    ) -> anyhow::Result<HashMap<String, Vec<String>>> {
        if server_uuids.is_empty() {
            return Ok(HashMap::new());
        }
        let db = self.net.db();
        let ports: Vec<Port> = db
            .select(&any_of("device_id", server_uuids.len()), server_uuids)
            .await
            .map_err(db_error)?;
        let mut ids: Vec<&str> = ports
            .iter()
            .flat_map(|p| p.security_groups.iter().map(String::as_str))
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let names: HashMap<String, String> = match ids.is_empty() {
            true => HashMap::new(),
            false => db
                .select::<SecurityGroup>(&any_of("id", ids.len()), &ids)
                .await
                .map_err(db_error)?
                .into_iter()
                .map(|g| (g.id, g.name))
                .collect(),
        };
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for port in &ports {
            let groups = out.entry(port.device_id.clone()).or_default();
            for id in &port.security_groups {
                let name = names.get(id).cloned().unwrap_or_else(|| id.clone());
                if !groups.contains(&name) {
                    groups.push(name);
                }
            }
        }
        Ok(out)
    }

    async fn floating_ip(
        &self,
        project: &str,
        admin: bool,
        address: &str,
    ) -> Result<Option<FloatingIpInfo>, ApiError> {
        let found: Vec<FloatingIp> = self
            .net
            .db()
            .select("floating_ip_address = $1", &[address])
            .await
            .map_err(internal)?;
        let Some(fip) = found.into_iter().find(|f| admin || f.project_id == project) else {
            return Ok(None);
        };
        let device_id = match &fip.port_id {
            Some(port) => self
                .port(port)
                .await
                .map_err(ApiError::internal)?
                .map(|p| p.device_id)
                .filter(|d| !d.is_empty()),
            None => None,
        };
        Ok(Some(FloatingIpInfo {
            id: fip.id,
            port_id: fip.port_id,
            device_id,
        }))
    }

    async fn set_floating_ip_port(
        &self,
        id: &str,
        port: Option<(&str, &str)>,
    ) -> Result<(), ApiError> {
        let change = FloatingIpUpdate {
            port_id: Some(port.map(|(p, _)| p.to_string())),
            fixed_ip_address: port.map(|(_, fixed)| fixed.to_string()),
            description: None,
        };
        match write_tx!(self.net.db(), |tx| floatingips::update(
            tx, id, &change, None
        )
        .await)
        {
            Ok(_) => Ok(()),
            Err(db::Error::Api(e)) => Err(e),
            Err(e) => Err(internal(e)),
        }
    }
}
