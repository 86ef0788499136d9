//! The route table: MAAS 2.8's handler names, paths and URI parameters
//! (maasserver/urls_api.py) for every resource the sim serves, and the
//! actions it implements. The router and describe/ are made from this.

use axum::http::Method;

use super::handlers as h;
use super::{Access, Action, Resource, run};

fn act(
    method: Method,
    op: Option<&'static str>,
    access: Access,
    doc: &'static str,
    run: super::Run,
) -> Action {
    Action {
        method,
        op,
        access,
        doc,
        run,
    }
}

fn get(op: Option<&'static str>, doc: &'static str, run: super::Run) -> Action {
    act(Method::GET, op, Access::Auth, doc, run)
}

fn post(op: Option<&'static str>, doc: &'static str, run: super::Run) -> Action {
    act(Method::POST, op, Access::Auth, doc, run)
}

fn res(
    name: &'static str,
    path: &'static str,
    params: &'static [&'static str],
    doc: &'static str,
    actions: Vec<Action>,
) -> Resource {
    Resource {
        name,
        path,
        params,
        doc,
        actions,
    }
}

/// Every resource, in no particular order (describe/ sorts by name).
pub fn table() -> Vec<Resource> {
    vec![
        res(
            "VersionHandler",
            "/MAAS/api/2.0/version/",
            &[],
            "Information about this region's API.",
            vec![act(
                Method::GET,
                None,
                Access::Anon,
                "Read the API version and capabilities.",
                run!(h::version),
            )],
        ),
        res(
            "MachinesHandler",
            "/MAAS/api/2.0/machines/",
            &[],
            "Manage the collection of all machines.",
            vec![
                get(None, "List machines.", run!(h::machines_read)),
                act(
                    Method::POST,
                    None,
                    Access::Both,
                    "Create (enlist) a machine; an admin's machine is commissioned unless commission=false.",
                    run!(h::machines_create),
                ),
                act(
                    Method::GET,
                    Some("is_registered"),
                    Access::Both,
                    "Whether a MAC address belongs to a machine.",
                    run!(h::machines_is_registered),
                ),
                get(
                    Some("power_parameters"),
                    "Power parameters of all (or the given id) machines.",
                    run!(h::machines_power_parameters),
                ),
                get(
                    Some("list_allocated"),
                    "Machines allocated to the caller.",
                    run!(h::machines_list_allocated),
                ),
            ],
        ),
        res(
            "MachineHandler",
            "/MAAS/api/2.0/machines/{system_id}/",
            &["system_id"],
            "Manage an individual machine.",
            vec![
                get(None, "Read a machine.", run!(h::machine_read)),
                act(
                    Method::DELETE,
                    None,
                    Access::Auth,
                    "Delete a machine.",
                    run!(h::machine_delete),
                ),
                get(
                    Some("power_parameters"),
                    "The machine's power parameters.",
                    run!(h::machine_power_parameters),
                ),
                get(
                    Some("query_power_state"),
                    "Ask the BMC for the power state.",
                    run!(h::machine_query_power_state),
                ),
                get(
                    Some("details"),
                    "Probe details (BSON lshw and lldp).",
                    run!(h::node_details),
                ),
                post(
                    Some("commission"),
                    "Commission the machine.",
                    run!(h::machine_commission),
                ),
                post(
                    Some("power_on"),
                    "Power the machine on.",
                    run!(h::machine_power_on),
                ),
                post(
                    Some("power_off"),
                    "Power the machine off.",
                    run!(h::machine_power_off),
                ),
                post(
                    Some("abort"),
                    "Abort the machine's current operation.",
                    run!(h::machine_abort),
                ),
            ],
        ),
        res(
            "NodesHandler",
            "/MAAS/api/2.0/nodes/",
            &[],
            "Manage the collection of all nodes.",
            vec![get(
                None,
                "List nodes (machines and controllers).",
                run!(h::nodes_read),
            )],
        ),
        res(
            "NodeHandler",
            "/MAAS/api/2.0/nodes/{system_id}/",
            &["system_id"],
            "Manage an individual node.",
            vec![
                get(None, "Read a node.", run!(h::node_read)),
                act(
                    Method::DELETE,
                    None,
                    Access::Auth,
                    "Delete a node.",
                    run!(h::machine_delete),
                ),
                get(
                    Some("power_parameters"),
                    "The node's power parameters.",
                    run!(h::machine_power_parameters),
                ),
                get(
                    Some("details"),
                    "Probe details (BSON lshw and lldp).",
                    run!(h::node_details),
                ),
            ],
        ),
        res(
            "NodeScriptResultsHandler",
            "/MAAS/api/2.0/nodes/{system_id}/results/",
            &["system_id"],
            "Script results of a node.",
            vec![get(
                None,
                "List script result sets (type=commissioning|testing|installation).",
                run!(h::results_read),
            )],
        ),
        res(
            "EventsHandler",
            "/MAAS/api/2.0/events/",
            &[],
            "Retrieve filtered node events.",
            vec![get(
                Some("query"),
                "List node events, newest first (id, level, after, limit).",
                run!(h::events_query),
            )],
        ),
        res(
            "MaasHandler",
            "/MAAS/api/2.0/maas/",
            &[],
            "Manage the MAAS server.",
            vec![
                get(
                    Some("get_config"),
                    "Read a configuration value.",
                    run!(h::maas_get_config),
                ),
                post(
                    Some("set_config"),
                    "Set a configuration value.",
                    run!(h::maas_set_config),
                ),
            ],
        ),
        res(
            "RackControllersHandler",
            "/MAAS/api/2.0/rackcontrollers/",
            &[],
            "Manage the collection of all rack controllers.",
            vec![get(None, "List rack controllers.", run!(h::racks_read))],
        ),
        res(
            "RackControllerHandler",
            "/MAAS/api/2.0/rackcontrollers/{system_id}/",
            &["system_id"],
            "Manage an individual rack controller.",
            vec![
                get(None, "Read a rack controller.", run!(h::rack_read)),
                get(
                    Some("list_boot_images"),
                    "The rack's boot images and their sync status.",
                    run!(h::rack_list_boot_images),
                ),
            ],
        ),
        res(
            "RegionControllersHandler",
            "/MAAS/api/2.0/regioncontrollers/",
            &[],
            "Manage the collection of all region controllers.",
            vec![get(None, "List region controllers.", run!(h::regions_read))],
        ),
        res(
            "RegionControllerHandler",
            "/MAAS/api/2.0/regioncontrollers/{system_id}/",
            &["system_id"],
            "Manage an individual region controller.",
            vec![get(None, "Read a region controller.", run!(h::region_read))],
        ),
        res(
            "UsersHandler",
            "/MAAS/api/2.0/users/",
            &[],
            "Manage the user accounts of this MAAS.",
            vec![
                get(None, "List users.", run!(h::users_read)),
                get(
                    Some("whoami"),
                    "The user the API key belongs to.",
                    run!(h::users_whoami),
                ),
            ],
        ),
        res(
            "UserHandler",
            "/MAAS/api/2.0/users/{username}/",
            &["username"],
            "Manage a user account.",
            vec![get(None, "Read a user.", run!(h::user_read))],
        ),
        res(
            "FabricsHandler",
            "/MAAS/api/2.0/fabrics/",
            &[],
            "Manage fabrics.",
            vec![get(None, "List fabrics.", run!(h::fabrics_read))],
        ),
        res(
            "FabricHandler",
            "/MAAS/api/2.0/fabrics/{id}/",
            &["id"],
            "Manage a fabric.",
            vec![get(None, "Read a fabric.", run!(h::fabric_read))],
        ),
        res(
            "VlansHandler",
            "/MAAS/api/2.0/fabrics/{fabric_id}/vlans/",
            &["fabric_id"],
            "Manage the VLANs of a fabric.",
            vec![get(None, "List the fabric's VLANs.", run!(h::vlans_read))],
        ),
        res(
            "VlanHandler",
            "/MAAS/api/2.0/fabrics/{fabric_id}/vlans/{vid}/",
            &["fabric_id", "vid"],
            "Manage a VLAN of a fabric.",
            vec![
                get(None, "Read a VLAN.", run!(h::vlan_read)),
                act(
                    Method::PUT,
                    None,
                    Access::Auth,
                    "Update a VLAN (dhcp_on, primary_rack).",
                    run!(h::vlan_update),
                ),
            ],
        ),
        res(
            "SubnetsHandler",
            "/MAAS/api/2.0/subnets/",
            &[],
            "Manage subnets.",
            vec![
                get(None, "List subnets.", run!(h::subnets_read)),
                post(None, "Create a subnet.", run!(h::subnets_create)),
            ],
        ),
        res(
            "SubnetHandler",
            "/MAAS/api/2.0/subnets/{id}/",
            &["id"],
            "Manage a subnet.",
            vec![get(
                None,
                "Read a subnet (by id or CIDR).",
                run!(h::subnet_read),
            )],
        ),
        res(
            "IPRangesHandler",
            "/MAAS/api/2.0/ipranges/",
            &[],
            "Manage IP ranges.",
            vec![
                get(None, "List IP ranges.", run!(h::ipranges_read)),
                post(None, "Create an IP range.", run!(h::ipranges_create)),
            ],
        ),
        res(
            "SpacesHandler",
            "/MAAS/api/2.0/spaces/",
            &[],
            "Manage spaces.",
            vec![get(None, "List spaces.", run!(h::spaces_read))],
        ),
        res(
            "SpaceHandler",
            "/MAAS/api/2.0/spaces/{id}/",
            &["id"],
            "Manage a space.",
            vec![get(None, "Read a space.", run!(h::space_read))],
        ),
        res(
            "ZonesHandler",
            "/MAAS/api/2.0/zones/",
            &[],
            "Manage physical zones.",
            vec![get(None, "List zones.", run!(h::zones_read))],
        ),
        res(
            "ZoneHandler",
            "/MAAS/api/2.0/zones/{name}/",
            &["name"],
            "Manage a physical zone.",
            vec![get(None, "Read a zone.", run!(h::zone_read))],
        ),
        res(
            "ResourcePoolsHandler",
            "/MAAS/api/2.0/resourcepools/",
            &[],
            "Manage resource pools.",
            vec![get(None, "List resource pools.", run!(h::pools_read))],
        ),
        res(
            "ResourcePoolHandler",
            "/MAAS/api/2.0/resourcepool/{id}/",
            &["id"],
            "Manage a resource pool.",
            vec![get(None, "Read a resource pool.", run!(h::pool_read))],
        ),
        res(
            "NodeScriptsHandler",
            "/MAAS/api/2.0/scripts/",
            &[],
            "Manage custom commissioning and testing scripts.",
            vec![
                get(
                    None,
                    "List stored scripts.",
                    run!(super::scripts::scripts_read),
                ),
                post(
                    None,
                    "Create a new script.",
                    run!(super::scripts::scripts_create),
                ),
            ],
        ),
        // No trailing slash: 2.8's urls_api.py has none for one script.
        res(
            "NodeScriptHandler",
            "/MAAS/api/2.0/scripts/{name}",
            &["name"],
            "Manage a custom commissioning or testing script.",
            vec![
                get(None, "Read a script.", run!(super::scripts::script_read)),
                act(
                    Method::DELETE,
                    None,
                    Access::Auth,
                    "Delete a script.",
                    run!(super::scripts::script_delete),
                ),
            ],
        ),
        res(
            "TagsHandler",
            "/MAAS/api/2.0/tags/",
            &[],
            "Manage all tags known to MAAS.",
            vec![get(None, "List tags.", run!(h::tags_read))],
        ),
        res(
            "TagHandler",
            "/MAAS/api/2.0/tags/{name}/",
            &["name"],
            "Manage a tag.",
            vec![get(None, "Read a tag.", run!(h::tag_read))],
        ),
        res(
            "DomainsHandler",
            "/MAAS/api/2.0/domains/",
            &[],
            "Manage domains.",
            vec![get(None, "List domains.", run!(h::domains_read))],
        ),
        res(
            "DomainHandler",
            "/MAAS/api/2.0/domains/{id}/",
            &["id"],
            "Manage a domain.",
            vec![get(None, "Read a domain.", run!(h::domain_read))],
        ),
        res(
            "BootResourcesHandler",
            "/MAAS/api/2.0/boot-resources/",
            &[],
            "Manage the boot resources.",
            vec![
                get(None, "List boot resources.", run!(h::boot_resources_read)),
                get(
                    Some("is_importing"),
                    "Whether boot resources are being imported.",
                    run!(h::boot_resources_is_importing),
                ),
            ],
        ),
        res(
            "BootSourcesHandler",
            "/MAAS/api/2.0/boot-sources/",
            &[],
            "Manage the boot sources.",
            vec![get(None, "List boot sources.", run!(h::boot_sources_read))],
        ),
        res(
            "BootSourceHandler",
            "/MAAS/api/2.0/boot-sources/{id}/",
            &["id"],
            "Manage a boot source.",
            vec![get(None, "Read a boot source.", run!(h::boot_source_read))],
        ),
    ]
}
