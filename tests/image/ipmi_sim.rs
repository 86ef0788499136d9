//! OpenIPMI's ipmi_sim as the in-band peer of a QEMU guest (until the
//! project's own BMC lands): a LAN channel on loopback for reading the
//! BMC back from the host, and the "VM" serial codec QEMU's
//! ipmi-bmc-extern connects to.

use std::path::Path;
use std::time::Duration;

use maas_e2e::cmd::Cmd;

/// A running ipmi_sim; its process group is killed on drop.
pub struct IpmiSim {
    pub lan_port: u16,
    pub serial_port: u16,
    pgid: i32,
    _child: tokio::process::Child,
}

/// Admin credentials configured on the simulator's LAN channel.
pub const ADMIN_USER: &str = "admin";
pub const ADMIN_PASSWORD: &str = "adminpass";

fn free_port(udp: bool) -> u16 {
    if udp {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    } else {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }
}

impl IpmiSim {
    /// Start ipmi_sim with its config, emulator commands and state in `dir`.
    pub async fn start(dir: &Path, name: &str) -> IpmiSim {
        let lan_port = free_port(true);
        let serial_port = free_port(false);
        let state_dir = dir.join("state");
        std::fs::create_dir_all(&state_dir).unwrap();
        let lan_conf = format!(
            "name \"{name}\"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 {lan_port}
    priv_limit admin
    guid a123456789abcdefa123456789abcdef
  endlan
  serial 15 127.0.0.1 {serial_port} codec VM
  startnow false
  user 1 true  \"\"      \"\"          user  10 none md5 straight
  user 2 true  \"{ADMIN_USER}\" \"{ADMIN_PASSWORD}\" admin 10 none md5 straight
"
        );
        // The BMC (0x20) as an IPMI 2.0 device; mc_enable starts its channels.
        let emu = "mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr
sel_enable 0x20 1000 0x0a
mc_enable 0x20
";
        std::fs::write(dir.join("lan.conf"), lan_conf).unwrap();
        std::fs::write(dir.join("sim.emu"), emu).unwrap();
        let mut cmd = Cmd::new("ipmi_sim")
            .args(["-n", "-c"])
            .arg(dir.join("lan.conf").to_string_lossy())
            .arg("-f")
            .arg(dir.join("sim.emu").to_string_lossy())
            .arg("-s")
            .arg(state_dir.to_string_lossy())
            .to_tokio();
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(dir.join("ipmi_sim.log")).unwrap())
            .stderr(std::fs::File::create(dir.join("ipmi_sim.err")).unwrap());
        let child = cmd.spawn().expect("start ipmi_sim");
        let pgid = child.id().unwrap() as i32;
        let sim = IpmiSim {
            lan_port,
            serial_port,
            pgid,
            _child: child,
        };
        // Ready when its LAN channel answers.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            if sim.ipmitool(&["mc", "info"]).await.is_ok() {
                return sim;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "ipmi_sim did not answer on 127.0.0.1:{lan_port}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// ipmitool over the simulator's LAN channel as the admin user.
    pub async fn ipmitool(&self, args: &[&str]) -> Result<String, maas_e2e::cmd::CmdError> {
        Cmd::new("ipmitool")
            .args(["-I", "lanplus", "-C", "3", "-H", "127.0.0.1", "-p"])
            .arg(self.lan_port.to_string())
            .args(["-U", ADMIN_USER, "-P"])
            .secret_arg(ADMIN_PASSWORD)
            .args(args.iter().copied())
            .timeout(Duration::from_secs(20))
            .run()
            .await
    }

    /// QEMU arguments for a KCS BMC backed by this simulator.
    pub fn qemu_args(&self) -> Vec<String> {
        [
            "-chardev",
            &format!(
                "socket,id=ipmi0,host=127.0.0.1,port={},reconnect-ms=1000",
                self.serial_port
            ),
            "-device",
            "ipmi-bmc-extern,id=bmc0,chardev=ipmi0",
            "-device",
            "isa-ipmi-kcs,bmc=bmc0",
        ]
        .map(String::from)
        .to_vec()
    }
}

impl Drop for IpmiSim {
    fn drop(&mut self) {
        maas_e2e::process::kill_group(self.pgid);
    }
}
