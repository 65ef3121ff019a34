//! Neutron's default policy rules (secure RBAC), registered by the network service.
//!
//! Generated from `neutron/conf/policies/*.py` (the resources this crate serves). Neutron's
//! `field:` checks (`field:networks:shared=True`, `field:port:device_owner=~^network:`) are not
//! part of the oslo.policy language this engine speaks; they are written as literal checks on a
//! field the API puts into every target (`True:%(shared)s`, `'network':%(device_owner_prefix)s`),
//! which decide the same way. The base rules have no scope; every API rule is project-scoped as
//! upstream.
use ferrostack_policy::RuleDefault;

const fn base(
    name: &'static str,
    check_str: &'static str,
    description: &'static str,
) -> RuleDefault {
    RuleDefault {
        name,
        check_str,
        description,
        scope_types: &[],
    }
}

const fn api(
    name: &'static str,
    check_str: &'static str,
    description: &'static str,
) -> RuleDefault {
    RuleDefault {
        name,
        check_str,
        description,
        scope_types: &["project"],
    }
}

/// Every network-service rule.
pub const NETWORK_RULES: &[RuleDefault] = &[
    base(
        "context_is_admin",
        "role:admin",
        "Rule for cloud admin access",
    ),
    base(
        "context_with_global_access",
        "!",
        "Rule for context with global access to the resources",
    ),
    base(
        "service_api",
        "role:service",
        "Default rule for the service-to-service APIs.",
    ),
    base(
        "owner",
        "project_id:%(project_id)s",
        "Rule for resource owner access",
    ),
    base(
        "admin_or_owner",
        "rule:context_is_admin or rule:owner",
        "Rule for admin or owner access",
    ),
    base(
        "context_is_advsvc",
        "role:advsvc",
        "Rule for advsvc role access",
    ),
    base(
        "admin_or_network_owner",
        "rule:context_is_admin or project_id:%(network:project_id)s",
        "Rule for admin or network owner access",
    ),
    base(
        "admin_owner_or_network_owner",
        "rule:owner or rule:admin_or_network_owner",
        "Rule for resource owner, admin or network owner access",
    ),
    base(
        "network_owner",
        "project_id:%(network:project_id)s",
        "Rule for network owner access",
    ),
    base(
        "admin_only",
        "rule:context_is_admin",
        "Rule for admin-only access",
    ),
    base("regular_user", "", "Rule for regular user access"),
    base(
        "shared",
        "True:%(shared)s",
        "Rule of shared network (upstream: `field:networks:shared=True`; the target carries the field)",
    ),
    base("default", "rule:admin_or_owner", "Default access rule"),
    base(
        "admin_or_ext_parent_owner",
        "rule:context_is_admin or project_id:%(ext_parent:project_id)s",
        "Rule for common parent owner check",
    ),
    base(
        "ext_parent_owner",
        "project_id:%(ext_parent:project_id)s",
        "Rule for common parent owner check",
    ),
    base(
        "sg_owner",
        "project_id:%(security_group:project_id)s",
        "Rule for security group owner access",
    ),
    api(
        "get_availability_zone",
        "role:reader",
        "List availability zones",
    ),
    api(
        "create_floatingip",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Create a floating IP",
    ),
    api(
        "create_floatingip:floating_ip_address",
        "(rule:admin_only) or (role:manager and project_id:%(project_id)s)",
        "Create a floating IP with a specific IP address",
    ),
    api(
        "create_floatingip:router_id",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Specify the hosting router of a floating IP on create",
    ),
    api(
        "create_floatingip:tags",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Create the floating IP tags",
    ),
    api(
        "get_floatingip",
        "(rule:admin_only) or (role:reader and project_id:%(project_id)s)",
        "Get a floating IP",
    ),
    api(
        "get_floatingip:tags",
        "(rule:admin_only) or (role:reader and project_id:%(project_id)s)",
        "Get the floating IP tags",
    ),
    api(
        "update_floatingip",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Update a floating IP",
    ),
    api(
        "update_floatingip:router_id",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Specify the hosting router of a floating IP on update",
    ),
    api(
        "update_floatingip:tags",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Update the floating IP tags",
    ),
    api(
        "delete_floatingip",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Delete a floating IP",
    ),
    api(
        "delete_floatingip:tags",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Delete the floating IP tags",
    ),
    api(
        "get_floatingip_pool",
        "(rule:admin_only) or (role:reader and project_id:%(project_id)s)",
        "Get floating IP pools",
    ),
    base(
        "external",
        "True:%(router:external)s",
        "Definition of an external network (upstream: `field:networks:router:external=True`; the target carries the field)",
    ),
    api(
        "create_network",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Create a network",
    ),
    api(
        "create_network:shared",
        "rule:admin_only",
        "Create a shared network",
    ),
    api(
        "create_network:router:external",
        "rule:admin_only",
        "Create an external network",
    ),
    api(
        "create_network:port_security_enabled",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Specify ``port_security_enabled`` attribute when creating a network",
    ),
    api(
        "create_network:provider:network_type",
        "rule:admin_only",
        "Specify ``provider:network_type`` when creating a network",
    ),
    api(
        "create_network:provider:physical_network",
        "rule:admin_only",
        "Specify ``provider:physical_network`` when creating a network",
    ),
    api(
        "create_network:provider:segmentation_id",
        "rule:admin_only",
        "Specify ``provider:segmentation_id`` when creating a network",
    ),
    api(
        "create_network:tags",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Create the network tags",
    ),
    api(
        "get_network",
        "(rule:admin_only) or (role:reader and project_id:%(project_id)s) or rule:service_api or rule:shared or rule:external or rule:context_is_advsvc",
        "Get a network",
    ),
    api(
        "get_network:provider:network_type",
        "rule:admin_only",
        "Get ``provider:network_type`` attribute of a network",
    ),
    api(
        "get_network:provider:physical_network",
        "rule:admin_only",
        "Get ``provider:physical_network`` attribute of a network",
    ),
    api(
        "get_network:provider:segmentation_id",
        "rule:admin_only",
        "Get ``provider:segmentation_id`` attribute of a network",
    ),
    api(
        "get_network:tags",
        "(rule:admin_only) or (role:reader and project_id:%(project_id)s) or rule:shared or rule:external or rule:context_is_advsvc",
        "Get the network tags",
    ),
    api(
        "update_network",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Update a network",
    ),
    api(
        "update_network:shared",
        "rule:admin_only",
        "Update ``shared`` attribute of a network",
    ),
    api(
        "update_network:provider:network_type",
        "rule:admin_only",
        "Update ``provider:network_type`` attribute of a network",
    ),
    api(
        "update_network:provider:physical_network",
        "rule:admin_only",
        "Update ``provider:physical_network`` attribute of a network",
    ),
    api(
        "update_network:provider:segmentation_id",
        "rule:admin_only",
        "Update ``provider:segmentation_id`` attribute of a network",
    ),
    api(
        "update_network:router:external",
        "rule:admin_only",
        "Update ``router:external`` attribute of a network",
    ),
    api(
        "update_network:port_security_enabled",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Update ``port_security_enabled`` attribute of a network",
    ),
    api(
        "update_network:tags",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Update the network tags",
    ),
    api(
        "delete_network",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Delete a network",
    ),
    api(
        "delete_network:tags",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Delete the network tags",
    ),
    base(
        "network_device",
        "'network':%(device_owner_prefix)s",
        "Definition of port with network device_owner (upstream: `field:port:device_owner=~^network:`; the target carries the field)",
    ),
    base(
        "compute_device",
        "'compute':%(device_owner_prefix)s",
        "Definition of port with compute device_owner (upstream: `field:port:device_owner=~^compute:`; the target carries the field)",
    ),
    base(
        "baremetal_device",
        "'baremetal':%(device_owner_prefix)s",
        "Definition of port with baremetal device_owner (upstream: `field:port:device_owner=~^baremetal:`; the target carries the field)",
    ),
    base(
        "manila_device",
        "'manila':%(device_owner_prefix)s",
        "Definition of port with manila device_owner (upstream: `field:port:device_owner=~^manila:`; the target carries the field)",
    ),
    api(
        "create_port",
        "(rule:admin_only) or (rule:service_api) or role:member and rule:network_owner or rule:shared",
        "Create a port",
    ),
    api(
        "create_port:device_id",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s) or rule:service_api",
        "Specify ``device_id`` attribute when creating a port",
    ),
    api(
        "create_port:device_owner",
        "not rule:network_device or (rule:admin_only) or (rule:service_api) or role:member and rule:network_owner",
        "Specify ``device_owner`` attribute when creating a port",
    ),
    api(
        "create_port:mac_address",
        "(rule:admin_only) or (rule:service_api) or role:member and rule:network_owner",
        "Specify ``mac_address`` attribute when creating a port",
    ),
    api(
        "create_port:fixed_ips",
        "(rule:admin_only) or (rule:service_api) or role:member and rule:network_owner or rule:shared",
        "Specify ``fixed_ips`` information when creating a port",
    ),
    api(
        "create_port:fixed_ips:ip_address",
        "(rule:admin_only) or (rule:service_api) or role:member and rule:network_owner",
        "Specify IP address in ``fixed_ips`` when creating a port",
    ),
    api(
        "create_port:fixed_ips:subnet_id",
        "(rule:admin_only) or (rule:service_api) or role:member and rule:network_owner or rule:shared",
        "Specify subnet ID in ``fixed_ips`` when creating a port",
    ),
    api(
        "create_port:port_security_enabled",
        "(rule:admin_only) or (rule:service_api) or role:member and rule:network_owner",
        "Specify ``port_security_enabled`` attribute when creating a port",
    ),
    api(
        "create_port:binding:host_id",
        "(rule:admin_only) or (rule:service_api)",
        "Specify ``binding:host_id`` attribute when creating a port",
    ),
    api(
        "create_port:binding:profile",
        "rule:service_api",
        "Specify ``binding:profile`` attribute when creating a port",
    ),
    api(
        "create_port:binding:vnic_type",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s) or rule:service_api",
        "Specify ``binding:vnic_type`` attribute when creating a port",
    ),
    api(
        "create_port:allowed_address_pairs",
        "(rule:admin_only) or (role:member and rule:network_owner) or rule:service_api",
        "Specify ``allowed_address_pairs`` attribute when creating a port",
    ),
    api(
        "create_port:allowed_address_pairs:mac_address",
        "(rule:admin_only) or (role:member and rule:network_owner) or rule:service_api",
        "Specify ``mac_address` of `allowed_address_pairs`` attribute when creating a port",
    ),
    api(
        "create_port:allowed_address_pairs:ip_address",
        "(rule:admin_only) or (role:member and rule:network_owner) or rule:service_api",
        "Specify ``ip_address`` of ``allowed_address_pairs`` attribute when creating a port",
    ),
    api(
        "create_port:tags",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s) or rule:context_is_advsvc",
        "Create the port tags",
    ),
    api(
        "get_port",
        "(rule:admin_only) or (rule:service_api) or role:reader and rule:network_owner or role:reader and project_id:%(project_id)s",
        "Get a port",
    ),
    api(
        "get_port:binding:vif_type",
        "(rule:admin_only) or (rule:service_api)",
        "Get ``binding:vif_type`` attribute of a port",
    ),
    api(
        "get_port:binding:vif_details",
        "(rule:admin_only) or (rule:service_api)",
        "Get ``binding:vif_details`` attribute of a port",
    ),
    api(
        "get_port:binding:host_id",
        "(rule:admin_only) or (rule:service_api)",
        "Get ``binding:host_id`` attribute of a port",
    ),
    api(
        "get_port:binding:profile",
        "(rule:admin_only) or (rule:service_api)",
        "Get ``binding:profile`` attribute of a port",
    ),
    api(
        "get_port:tags",
        "rule:context_is_advsvc or (rule:admin_only) or (role:reader and rule:network_owner) or role:reader and project_id:%(project_id)s",
        "Get the port tags",
    ),
    api(
        "update_port",
        "(rule:admin_only) or (rule:service_api) or role:member and project_id:%(project_id)s",
        "Update a port",
    ),
    api(
        "update_port:device_id",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s) or rule:service_api",
        "Update ``device_id`` attribute of a port",
    ),
    api(
        "update_port:device_owner",
        "not rule:network_device or (rule:admin_only) or (rule:service_api) or role:member and rule:network_owner",
        "Update ``device_owner`` attribute of a port",
    ),
    api(
        "update_port:mac_address",
        "(rule:admin_only) or (rule:service_api) or role:manager and rule:network_owner",
        "Update ``mac_address`` attribute of a port",
    ),
    api(
        "update_port:fixed_ips",
        "(rule:admin_only) or (rule:service_api) or role:member and rule:network_owner",
        "Specify ``fixed_ips`` information when updating a port",
    ),
    api(
        "update_port:fixed_ips:ip_address",
        "(rule:admin_only) or (rule:service_api) or role:member and rule:network_owner",
        "Specify IP address in ``fixed_ips`` information when updating a port",
    ),
    api(
        "update_port:fixed_ips:subnet_id",
        "(rule:admin_only) or (rule:service_api) or role:member and rule:network_owner or rule:shared",
        "Specify subnet ID in ``fixed_ips`` information when updating a port",
    ),
    api(
        "update_port:port_security_enabled",
        "(rule:admin_only) or (rule:service_api) or role:member and rule:network_owner",
        "Update ``port_security_enabled`` attribute of a port",
    ),
    api(
        "update_port:binding:host_id",
        "(rule:admin_only) or (rule:service_api)",
        "Update ``binding:host_id`` attribute of a port",
    ),
    api(
        "update_port:binding:profile",
        "rule:service_api",
        "Update ``binding:profile`` attribute of a port",
    ),
    api(
        "update_port:binding:vnic_type",
        "(rule:admin_only) or (rule:service_api) or role:member and project_id:%(project_id)s",
        "Update ``binding:vnic_type`` attribute of a port",
    ),
    api(
        "update_port:allowed_address_pairs",
        "(rule:admin_only) or (role:member and rule:network_owner) or rule:service_api",
        "Update ``allowed_address_pairs`` attribute of a port",
    ),
    api(
        "update_port:allowed_address_pairs:mac_address",
        "(rule:admin_only) or (role:member and rule:network_owner) or rule:service_api",
        "Update ``mac_address`` of ``allowed_address_pairs`` attribute of a port",
    ),
    api(
        "update_port:allowed_address_pairs:ip_address",
        "(rule:admin_only) or (role:member and rule:network_owner) or rule:service_api",
        "Update ``ip_address`` of ``allowed_address_pairs`` attribute of a port",
    ),
    api(
        "update_port:tags",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s) or rule:context_is_advsvc",
        "Update the port tags",
    ),
    api(
        "delete_port",
        "(rule:admin_only) or (rule:service_api) or (service_roles:service and (role:member and rule:network_owner or role:member and project_id:%(project_id)s)) or (not rule:compute_device and not rule:baremetal_device and not rule:manila_device and (role:member and rule:network_owner or role:member and project_id:%(project_id)s))",
        "Delete a port",
    ),
    api(
        "delete_port:tags",
        "rule:context_is_advsvc or role:member and project_id:%(project_id)s or (rule:admin_only) or (role:member and rule:network_owner)",
        "Delete the port tags",
    ),
    api(
        "get_quota",
        "(rule:admin_only) or (role:manager and project_id:%(project_id)s)",
        "Get a resource quota",
    ),
    api("update_quota", "rule:admin_only", "Update a resource quota"),
    api("delete_quota", "rule:admin_only", "Delete a resource quota"),
    api(
        "create_router",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Create a router",
    ),
    api(
        "create_router:distributed",
        "rule:admin_only",
        "Specify ``distributed`` attribute when creating a router",
    ),
    api(
        "create_router:ha",
        "rule:admin_only",
        "Specify ``ha`` attribute when creating a router",
    ),
    api(
        "create_router:external_gateway_info",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Specify ``external_gateway_info`` information when creating a router",
    ),
    api(
        "create_router:external_gateway_info:network_id",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Specify ``network_id`` in ``external_gateway_info`` information when creating a router",
    ),
    api(
        "create_router:external_gateway_info:enable_snat",
        "rule:admin_only",
        "Specify ``enable_snat`` in ``external_gateway_info`` information when creating a router",
    ),
    api(
        "create_router:external_gateway_info:external_fixed_ips",
        "rule:admin_only",
        "Specify ``external_fixed_ips`` in ``external_gateway_info`` information when creating a router",
    ),
    api(
        "create_router:tags",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Create the router tags",
    ),
    api(
        "get_router",
        "(rule:admin_only) or (role:reader and project_id:%(project_id)s)",
        "Get a router",
    ),
    api(
        "get_router:distributed",
        "rule:admin_only",
        "Get ``distributed`` attribute of a router",
    ),
    api(
        "get_router:ha",
        "rule:admin_only",
        "Get ``ha`` attribute of a router",
    ),
    api(
        "get_router:tags",
        "(rule:admin_only) or (role:reader and project_id:%(project_id)s)",
        "Get the router tags",
    ),
    api(
        "update_router",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Update a router",
    ),
    api(
        "update_router:distributed",
        "rule:admin_only",
        "Update ``distributed`` attribute of a router",
    ),
    api(
        "update_router:ha",
        "rule:admin_only",
        "Update ``ha`` attribute of a router",
    ),
    api(
        "update_router:external_gateway_info",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Update ``external_gateway_info`` information of a router",
    ),
    api(
        "update_router:external_gateway_info:network_id",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Update ``network_id`` attribute of ``external_gateway_info`` information of a router",
    ),
    api(
        "update_router:external_gateway_info:enable_snat",
        "rule:admin_only",
        "Update ``enable_snat`` attribute of ``external_gateway_info`` information of a router",
    ),
    api(
        "update_router:external_gateway_info:external_fixed_ips",
        "rule:admin_only",
        "Update ``external_fixed_ips`` attribute of ``external_gateway_info`` information of a router",
    ),
    api(
        "update_router:tags",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Update the router tags",
    ),
    api(
        "delete_router",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Delete a router",
    ),
    api(
        "delete_router:tags",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Delete the router tags",
    ),
    api(
        "add_router_interface",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Add an interface to a router",
    ),
    api(
        "remove_router_interface",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Remove an interface from a router",
    ),
    api(
        "add_extraroutes",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Add extra route to a router",
    ),
    api(
        "remove_extraroutes",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Remove extra route from a router",
    ),
    base(
        "admin_or_sg_owner",
        "rule:context_is_admin or project_id:%(security_group:project_id)s",
        "Rule for admin or security group owner access",
    ),
    base(
        "admin_owner_or_sg_owner",
        "rule:owner or rule:admin_or_sg_owner",
        "Rule for resource owner, admin or security group owner access",
    ),
    base(
        "shared_security_group",
        "True:%(shared)s",
        "Definition of a shared security group (upstream: `field:security_groups:shared=True`; the target carries the field)",
    ),
    api(
        "create_default_security_group",
        "(rule:admin_only) or (rule:service_api) or role:reader and project_id:%(project_id)s",
        "Create a default security group for a project. This rule is only used internally by Neutron while creating a default SG for a project.",
    ),
    api(
        "create_security_group",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Create a security group",
    ),
    api(
        "create_security_group:tags",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Create the security group tags",
    ),
    api(
        "get_security_group",
        "(rule:admin_only) or (role:reader and project_id:%(project_id)s) or rule:shared_security_group",
        "Get a security group",
    ),
    api(
        "get_security_group:tags",
        "(rule:admin_only) or (role:reader and project_id:%(project_id)s) or rule:shared_security_group",
        "Get the security group tags",
    ),
    api(
        "update_security_group",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Update a security group",
    ),
    api(
        "update_security_group:tags",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Update the security group tags",
    ),
    api(
        "delete_security_group",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Delete a security group",
    ),
    api(
        "delete_security_group:tags",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Delete the security group tags",
    ),
    api(
        "create_security_group_rule",
        "(rule:admin_only) or (role:member and rule:sg_owner)",
        "Create a security group rule",
    ),
    api(
        "get_security_group_rule",
        "(rule:admin_only) or (role:reader and rule:sg_owner)",
        "Get a security group rule",
    ),
    api(
        "delete_security_group_rule",
        "(rule:admin_only) or (role:member and rule:sg_owner)",
        "Delete a security group rule",
    ),
    base(
        "external_network",
        "True:%(router:external)s",
        "Definition of a subnet that belongs to an external network (upstream: `field:subnets:router:external=True`; the target carries the field)",
    ),
    api(
        "create_subnet",
        "(rule:admin_only) or (role:member and rule:network_owner)",
        "Create a subnet",
    ),
    api(
        "create_subnet:tags",
        "role:member and project_id:%(project_id)s or (rule:admin_only) or (role:member and rule:network_owner)",
        "Create the subnet tags",
    ),
    api(
        "get_subnet",
        "role:reader and project_id:%(project_id)s or rule:shared or rule:external_network or (rule:admin_only) or (role:reader and rule:network_owner) or rule:service_api",
        "Get a subnet",
    ),
    api(
        "get_subnet:tags",
        "role:reader and project_id:%(project_id)s or rule:shared or rule:external_network or (rule:admin_only) or (role:reader and rule:network_owner)",
        "Get the subnet tags",
    ),
    api(
        "update_subnet",
        "role:member and project_id:%(project_id)s or (rule:admin_only) or (role:member and rule:network_owner)",
        "Update a subnet",
    ),
    api(
        "update_subnet:tags",
        "role:member and project_id:%(project_id)s or (rule:admin_only) or (role:member and rule:network_owner)",
        "Update the subnet tags",
    ),
    api(
        "delete_subnet",
        "role:member and project_id:%(project_id)s or (rule:admin_only) or (role:member and rule:network_owner)",
        "Delete a subnet",
    ),
    api(
        "delete_subnet:tags",
        "role:member and project_id:%(project_id)s or (rule:admin_only) or (role:member and rule:network_owner)",
        "Delete the subnet tags",
    ),
    base(
        "shared_subnetpools",
        "True:%(shared)s",
        "Definition of a shared subnetpool (upstream: `field:subnetpools:shared=True`; the target carries the field)",
    ),
    api(
        "create_subnetpool",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Create a subnetpool",
    ),
    api(
        "create_subnetpool:shared",
        "rule:admin_only",
        "Create a shared subnetpool",
    ),
    api(
        "create_subnetpool:is_default",
        "rule:admin_only",
        "Specify ``is_default`` attribute when creating a subnetpool",
    ),
    api(
        "create_subnetpool:tags",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Create the subnetpool tags",
    ),
    api(
        "get_subnetpool",
        "(rule:admin_only) or (role:reader and project_id:%(project_id)s) or rule:shared_subnetpools",
        "Get a subnetpool",
    ),
    api(
        "get_subnetpool:tags",
        "(rule:admin_only) or (role:reader and project_id:%(project_id)s) or rule:shared_subnetpools",
        "Get the subnetpool tags",
    ),
    api(
        "update_subnetpool",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Update a subnetpool",
    ),
    api(
        "update_subnetpool:is_default",
        "rule:admin_only",
        "Update ``is_default`` attribute of a subnetpool",
    ),
    api(
        "update_subnetpool:tags",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Update the subnetpool tags",
    ),
    api(
        "delete_subnetpool",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Delete a subnetpool",
    ),
    api(
        "delete_subnetpool:tags",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Delete the subnetpool tags",
    ),
    api(
        "onboard_network_subnets",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Onboard existing subnet into a subnetpool",
    ),
    api(
        "add_prefixes",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Add prefixes to a subnetpool",
    ),
    api(
        "remove_prefixes",
        "(rule:admin_only) or (role:member and project_id:%(project_id)s)",
        "Remove unallocated prefixes from a subnetpool",
    ),
    api("get_agent", "rule:admin_only", "Get an agent"),
    api("update_agent", "rule:admin_only", "Update an agent"),
    api("delete_agent", "rule:admin_only", "Delete an agent"),
];

/// Whether `name` is one of the network service's default rules (attribute-level rules such as
/// `create_port:mac_address` only apply when registered).
pub fn is_registered(name: &str) -> bool {
    NETWORK_RULES.iter().any(|r| r.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_parses_and_names_are_unique() {
        let mut enforcer = ferrostack_policy::Enforcer::new(true);
        enforcer.register(NETWORK_RULES).unwrap();
        let mut names: Vec<_> = NETWORK_RULES.iter().map(|r| r.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), NETWORK_RULES.len());
        assert!(enforcer.validate().is_empty(), "{:?}", enforcer.validate());
    }

    #[test]
    fn field_checks_decide_as_neutron() {
        let mut enforcer = ferrostack_policy::Enforcer::new(true);
        enforcer.register(NETWORK_RULES).unwrap();
        let member = serde_json::json!({"project_id": "p2", "roles": ["member", "reader"]});
        let shared =
            serde_json::json!({"project_id": "p1", "shared": true, "router:external": false});
        let private =
            serde_json::json!({"project_id": "p1", "shared": false, "router:external": false});
        assert!(enforcer.authorize("get_network", &shared, &member));
        assert!(!enforcer.authorize("get_network", &private, &member));
        let own = serde_json::json!({"project_id": "p2", "network:project_id": "p2",
            "device_owner": "network:dhcp", "device_owner_prefix": "network"});
        let other = serde_json::json!({"project_id": "p2", "network:project_id": "p1",
            "device_owner": "network:dhcp", "device_owner_prefix": "network"});
        assert!(enforcer.authorize("create_port:device_owner", &own, &member));
        assert!(!enforcer.authorize("create_port:device_owner", &other, &member));
        let compute = serde_json::json!({"project_id": "p2", "network:project_id": "p2",
            "device_owner": "compute:nova", "device_owner_prefix": "compute"});
        assert!(!enforcer.authorize("delete_port", &compute, &member));
    }
}
