//! After wiring: what the harness tells MAAS through its REST API 2.0 (the
//! 2.8 chart configures no subnet and no DHCP), and the chart-specific
//! checks, as typed data. The MAAS client (src/maas) performs the calls;
//! values only known at run time are `{placeholders}` filled from earlier
//! answers (`captures`).

use serde::Serialize;
use serde_json::Value;

use super::options::ChartOptions;
use super::wiring::DECOY_VETH;

/// An HTTP method of the MAAS API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Method {
    Get,
    Post,
    Put,
}

/// One call, relative to `/MAAS/api/2.0/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiCall {
    pub method: Method,
    pub path: String,
    /// Query (GET) or form (POST/PUT) parameters, in order.
    pub params: Vec<(String, String)>,
    /// Placeholders this call's answer fills: (name, JSON pointer or rule).
    pub captures: Vec<(String, String)>,
    /// Repeat until this holds (a wait), if any.
    pub until: Option<String>,
    pub why: String,
}

fn call(method: Method, path: &str, params: &[(&str, &str)], why: &str) -> ApiCall {
    ApiCall {
        method,
        path: path.into(),
        params: params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        captures: Vec::new(),
        until: None,
        why: why.into(),
    }
}

/// Configure the PXE network: find the rack and the subnet its bridge
/// address created, add the dynamic range, turn DHCP on with the primary
/// rack, then wait until the rack reports boot images synced.
pub fn configure_calls(opts: &ChartOptions) -> Vec<ApiCall> {
    let pxe = &opts.wiring.links[0];
    let cidr = pxe.rack_address.subnet();
    let (start, end) = opts.wiring.dynamic_range;
    let mut calls = Vec::new();

    let mut racks = call(
        Method::Get,
        "rackcontrollers/",
        &[],
        "find the rack that registered from the wired node",
    );
    racks.captures.push((
        "rack_id".into(),
        format!(
            "system_id of the rack whose interface_set has {}",
            pxe.node_bridge
        ),
    ));
    calls.push(racks);

    // A subnet's cidr holds a '/', so it cannot be a path specifier: list
    // the subnets and pick it by its cidr.
    let mut subnet = call(
        Method::Get,
        "subnets/",
        &[],
        "the subnet MAAS made from the rack's bridge address",
    );
    let pick = format!("the subnet whose cidr is {cidr}");
    subnet
        .captures
        .push(("subnet_id".into(), format!("{pick}: /id")));
    subnet
        .captures
        .push(("fabric_id".into(), format!("{pick}: /vlan/fabric_id")));
    subnet
        .captures
        .push(("vid".into(), format!("{pick}: /vlan/vid")));
    calls.push(subnet);

    if let Some(gw) = opts.wiring.gateway {
        calls.push(call(
            Method::Put,
            "subnets/{subnet_id}/",
            &[("gateway_ip", &gw.to_string())],
            "the gateway machines get",
        ));
    }
    calls.push(call(
        Method::Post,
        "ipranges/",
        &[
            ("type", "dynamic"),
            ("start_ip", &start.to_string()),
            ("end_ip", &end.to_string()),
            ("subnet", "{subnet_id}"),
            ("comment", "maas-e2e"),
        ],
        "addresses the rack's DHCP hands to enlisting machines",
    ));
    calls.push(call(
        Method::Put,
        "fabrics/{fabric_id}/vlans/{vid}/",
        &[("dhcp_on", "True"), ("primary_rack", "{rack_id}")],
        "DHCP on the PXE VLAN, served by the rack",
    ));
    let mut importing = call(
        Method::Get,
        "boot-resources/",
        &[("op", "is_importing")],
        "the region finished importing",
    );
    importing.until = Some("answer is false".into());
    calls.push(importing);
    let mut synced = call(
        Method::Get,
        "rackcontrollers/{rack_id}/",
        &[("op", "list_boot_images")],
        "boot images reached the rack",
    );
    synced.until = Some("status is \"synced\"".into());
    calls.push(synced);
    calls
}

/// A check specific to the chart's images.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "check", rename_all = "snake_case")]
pub enum ChartExpectation {
    /// GET rackcontrollers/{rack_id}/: interface_set lists `includes` and
    /// leaves out `excludes` (the nic_filter patch).
    RackInterfaces {
        includes: Vec<String>,
        excludes: Vec<String>,
    },
    /// No `Server` header on this port (the secure_headers patch).
    NoServerHeader { component: String, port: u16 },
    /// Secret maas-api-key's token authenticates: GET users/?op=whoami is 200.
    ApiKeyAuthenticates { secret: String, key: String },
}

/// The chart checks of a run.
pub fn chart_expectations(opts: &ChartOptions) -> Vec<ChartExpectation> {
    vec![
        ChartExpectation::RackInterfaces {
            includes: opts
                .wiring
                .links
                .iter()
                .map(|l| l.node_bridge.clone())
                .collect(),
            excludes: vec![DECOY_VETH.into()],
        },
        ChartExpectation::NoServerHeader {
            component: "region (service/maas-region)".into(),
            port: 5240,
        },
        ChartExpectation::NoServerHeader {
            component: "rack (pod/maas-rack-0)".into(),
            port: 5249,
        },
        ChartExpectation::ApiKeyAuthenticates {
            secret: "maas-api-key".into(),
            key: "token".into(),
        },
    ]
}

/// Judge a rack controller's JSON (GET rackcontrollers/{id}/) against
/// RackInterfaces; the error says what was listed.
pub fn check_rack_interfaces(
    rack: &Value,
    includes: &[String],
    excludes: &[String],
) -> Result<(), String> {
    let names: Vec<&str> = rack
        .get("interface_set")
        .and_then(Value::as_array)
        .ok_or("the rack controller has no interface_set array")?
        .iter()
        .filter_map(|i| i.get("name").and_then(Value::as_str))
        .collect();
    let missing: Vec<&String> = includes
        .iter()
        .filter(|n| !names.contains(&n.as_str()))
        .collect();
    let present: Vec<&String> = excludes
        .iter()
        .filter(|n| names.contains(&n.as_str()))
        .collect();
    if missing.is_empty() && present.is_empty() {
        return Ok(());
    }
    let mut why = Vec::new();
    if !missing.is_empty() {
        why.push(format!("missing {missing:?}"));
    }
    if !present.is_empty() {
        why.push(format!(
            "listed but should be left out {present:?} (is the nic_filter patch in the rack image?)"
        ));
    }
    Err(format!(
        "rack interface_set [{}]: {}",
        names.join(", "),
        why.join("; ")
    ))
}

/// Judge response headers for NoServerHeader; the error quotes the header.
pub fn check_no_server_header<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(), String> {
    match headers
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("server"))
    {
        None => Ok(()),
        Some((_, v)) => Err(format!(
            "response carries `Server: {v}` (is the secure_headers patch in the image?)"
        )),
    }
}

/// MAAS calls that collect evidence after a failure: events and, per
/// machine, commissioning script results.
pub fn collect_calls() -> Vec<ApiCall> {
    vec![
        call(
            Method::Get,
            "events/",
            &[("op", "query"), ("level", "DEBUG"), ("limit", "1000")],
            "MAAS events -> maas-events.json",
        ),
        call(
            Method::Get,
            "machines/",
            &[],
            "machines -> maas-machines.json",
        ),
        call(
            Method::Get,
            "nodes/{system_id}/results/",
            &[("type", "commissioning"), ("include_output", "1")],
            "per machine: script results -> maas-results-{system_id}.json",
        ),
        call(
            Method::Get,
            "rackcontrollers/",
            &[],
            "racks and their interfaces -> maas-racks.json",
        ),
    ]
}
