"""Drive our BMC's Redfish service with sushy (OpenStack's Redfish client).

Usage: redfish_sushy.py PHASE; RF_URL, RF_USER, RF_PASS (env), RF_CA (a
PEM to verify the service's certificate with). Prints one JSON object:
what sushy saw. The Rust test checks the BMC's state independently.
"""
import json
import os
import sys

import sushy
from sushy import auth


def connect():
    root = sushy.Sushy(
        os.environ["RF_URL"] + "/redfish/v1",
        auth=auth.SessionAuth(os.environ["RF_USER"], os.environ["RF_PASS"]),
        verify=os.environ["RF_CA"],
    )
    return root, root.get_system(root.get_system_collection().members_identities[0])


def seen(system):
    system.refresh()
    return {
        "power_state": str(system.power_state),
        "boot_enabled": str(system.boot.enabled),
        "boot_target": str(system.boot.target),
        "boot_mode": str(system.boot.mode),
        "allowed_resets": sorted(str(v) for v in system.get_allowed_reset_system_values()),
    }


def main(phase):
    root, system = connect()
    out = {"before": seen(system)}
    if phase == "pxe_once_and_on":
        system.set_system_boot_options(
            sushy.BootSource.PXE, enabled=sushy.BootSourceOverrideEnabled.ONCE
        )
        system.reset_system(sushy.ResetType.ON)
    elif phase == "restart_then_off":
        system.reset_system(sushy.ResetType.FORCE_RESTART)
        system.reset_system(sushy.ResetType.FORCE_OFF)
    elif phase == "hdd_continuous_uefi":
        system.set_system_boot_options(
            sushy.BootSource.HDD,
            enabled=sushy.BootSourceOverrideEnabled.CONTINUOUS,
            mode=sushy.BootSourceOverrideMode.UEFI,
        )
    elif phase == "off_when_off":
        try:
            system.reset_system(sushy.ResetType.FORCE_OFF)
            out["error"] = None
        except sushy.exceptions.HTTPError as e:
            out["error"] = {"status": e.status_code, "code": e.code, "detail": str(e.detail)}
    elif phase != "look":
        sys.exit("unknown phase " + phase)
    out["after"] = seen(system)
    manager = root.get_manager(root.get_manager_collection().members_identities[0])
    out["manager_type"] = str(manager.manager_type)
    chassis = root.get_chassis(root.get_chassis_collection().members_identities[0])
    out["chassis_type"] = str(chassis.chassis_type)
    print(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1])
