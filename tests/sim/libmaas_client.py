"""python-libmaas 0.6.8 (the official MAAS client) against the sim region.

Run by tests/sim/libmaas.rs with the venv's python: MAAS_URL and MAAS_KEY
(never printed) in the environment, the phase in argv[1]. Prints one JSON
object of what it saw; the Rust test asserts on it. Any exception fails.
"""

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

from maas.client import connect
from maas.client.bones import CallError
from maas.client.utils import sign
from maas.client.utils.creds import Credentials

URL = os.environ["MAAS_URL"].rstrip("/") + "/"
KEY = os.environ["MAAS_KEY"]
out = {}


def error_of(fn):
    """(status, body) of the CallError `fn` raises."""
    try:
        fn()
    except CallError as e:
        return [e.status, e.content.decode()]
    raise AssertionError("no CallError")


def raw(path, key=KEY):
    """GET with libmaas's own OAuth signing: (status, body)."""
    uri = URL + "api/2.0/" + path
    headers = {}
    sign(uri, headers, Credentials.parse(key))
    try:
        with urllib.request.urlopen(urllib.request.Request(uri, headers=headers)) as r:
            return [r.status, r.read().decode()]
    except urllib.error.HTTPError as e:
        return [e.code, e.read().decode()]


def phase_connect():
    client = connect(URL, apikey=KEY)
    out["version"] = client.version.get().version
    # Every collection libmaas has a facade for that the sim serves.
    lists = {
        "machines": client.machines.list,
        "nodes": client._origin.Nodes.read,
        "rack_controllers": client.rack_controllers.list,
        "region_controllers": client.region_controllers.list,
        "zones": client.zones.list,
        "resource_pools": client.resource_pools.list,
        "spaces": client.spaces.list,
        "tags": client.tags.list,
        "fabrics": client.fabrics.list,
        "subnets": client.subnets.list,
        "ip_ranges": client.ip_ranges.list,
        "boot_resources": client.boot_resources.list,
        "boot_sources": client.boot_sources.list,
        "users": client.users.list,
        "domains": client.domains.list,
    }
    out["counts"] = {name: len(list(fn())) for name, fn in lists.items()}
    out["whoami"] = client.users.whoami().username
    out["default_fabric_vlans"] = [v.vid for v in client.fabrics.get_default().vlans]
    out["zone"] = client.zones.get("default").name
    out["pool"] = client.resource_pools.get(0).name
    m = client.maas
    out["config"] = {
        "maas_name": m.get_name(),
        "ntp_server": m.get_ntp_server(),
        "boot_images_auto_import": m.get_boot_images_auto_import(),
        "kernel_opts": m.get_kernel_options(),
        "default_storage_layout": str(m.get_default_storage_layout()),
        "main_archive": m.get_main_archive(),
    }
    m.set_name("sim-by-libmaas")  # a multipart POST
    out["config"]["maas_name_after_set"] = m.get_name()

    # Create (multipart) as admin: 2.8 commissions it.
    machine = client.machines.create(
        "amd64",
        ["52:54:00:1b:00:01"],
        "ipmi",
        power_parameters={
            "power_address": "127.0.0.2",
            "power_user": "maas",
            "power_pass": os.environ["BMC_PASS"],
            "power_driver": "LAN_2_0",
        },
        hostname="libmaas-1",
    )
    out["created"] = {
        "system_id": machine.system_id,
        "hostname": machine.hostname,
        "status_name": machine.status_name,
    }
    # Attribute reads libmaas makes on a machine must not raise.
    fresh = client.machines.get(machine.system_id)
    out["machine_attrs"] = {
        "hwe_kernel": fresh.hwe_kernel,
        "min_hwe_kernel": fresh.min_hwe_kernel,
        "locked": fresh.locked,
        "owner_data": fresh.owner_data,
        "disable_ipv4": fresh.disable_ipv4,
        "hardware_uuid": fresh._data["hardware_uuid"],
        "interfaces": [i.name for i in fresh.interfaces],
        "boot_interface": fresh.boot_interface.name,
        "zone": fresh.zone.name,
        "pool": fresh.pool.name,
        "storage": fresh._data["storage"],
        "power_type": fresh.power_type,
        "status": fresh.status.name,
    }
    # Field counts of the answer itself (libmaas adds keys to its copy).
    body = json.loads(raw("machines/%s/" % machine.system_id)[1])
    out["field_count"] = len(body)
    out["interface_field_count"] = len(body["interface_set"][0])
    out["events"] = [e.event_type for e in client.events.query(hostnames=["libmaas-1"])][:3]
    out["power_parameters_all"] = sorted(client._origin.Machines._handler.power_parameters().keys())
    out["node"] = client._origin.Node.read(machine.system_id).hostname
    out["details_status"] = raw("nodes/%s/?op=details" % machine.system_id)[0]

    # Error paths, as MAAS 2.8 words them.
    out["errors"] = {
        "bad_key": error_of(lambda: connect(URL, apikey="a:b:c").machines.list()),
        "unknown_machine": error_of(lambda: client.machines.get("nosuch")),
        "unknown_op": raw("machines/?op=frobnicate"),
        "unknown_endpoint": raw("frobnicate/"),
        "bad_mac": error_of(lambda: client.machines.create("amd64", ["nope"], "manual")),
    }


def phase_signal():
    """The guest's side, as MAAS's own signal sends it: multipart with the
    script output as a file part, built by libmaas's encoder, signed with the
    node's key (NODE_KEY)."""
    import io
    from maas.client.utils.multipart import build_multipart_message, encode_multipart_message

    def post(fields):
        uri = URL + "metadata/2012-03-01/?op=signal"
        headers, body = encode_multipart_message(build_multipart_message(fields))
        headers = dict(headers)
        sign(uri, headers, Credentials.parse(os.environ["NODE_KEY"]))
        req = urllib.request.Request(uri, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(req) as r:
            return r.read().decode()

    hw = {"cpu_count": 2, "memory_mib": 1024, "disks": [{"name": "vda", "size_bytes": 8000000000}]}
    out["working"] = post([
        ("status", "WORKING"),
        ("exit_status", "0"),
        ("50-maas-01-commissioning", io.BytesIO(json.dumps(hw).encode())),
    ])
    out["ok"] = post([("status", "OK")])


def phase_power():
    client = connect(URL, apikey=KEY)
    machine = client.machines.get(os.environ["SYSTEM_ID"])
    out["status_name"] = machine.status_name
    out["cpu_count"] = machine.cpus
    out["storage"] = machine._data["storage"]
    # The sim, as MAAS, answers before the BMC acts; libmaas's wait polls
    # power_state until it changes. Commissioning left the machine on.
    out["before"] = machine.power_state.name
    machine.power_off(wait=True, wait_interval=0.2)
    out["first_off"] = machine.query_power_state().name
    machine.power_on(wait=True, wait_interval=0.2)
    out["after_on"] = machine.query_power_state().name
    machine.power_off(wait=True, wait_interval=0.2)
    out["after_off"] = machine.query_power_state().name


def phase_cli():
    """libmaas's own `maas` command: login with the key, then one list."""
    maas = os.path.join(os.path.dirname(sys.executable), "maas")
    env = dict(os.environ)  # HOME is the test's own directory (profiles db)
    login = subprocess.run(
        [maas, "login", "-p", "sim", "--apikey", "-", URL],
        input=KEY, env=env, capture_output=True, text=True,
    )
    out["login_rc"] = login.returncode
    out["login_err"] = login.stderr.replace(KEY, "<key>")[-500:]
    listed = subprocess.run(
        [maas, "machines", "--profile", "sim", "--format", "json"],
        env=env, capture_output=True, text=True,
    )
    out["list_rc"] = listed.returncode
    out["list_err"] = listed.stderr.replace(KEY, "<key>")[-500:]
    out["listed"] = json.loads(listed.stdout) if listed.returncode == 0 else None


{"connect": phase_connect, "signal": phase_signal, "power": phase_power, "cli": phase_cli}[sys.argv[1]]()
print(json.dumps(out))
