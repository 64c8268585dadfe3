//! Which node dialed a mesh connection, for the mesh proxies' [`Classifier`], read from
//! `/proc` (Linux): the socket whose ends are the connection's is found in
//! `/proc/net/tcp`, its inode among the open files of this process's children (found
//! by their `stat`), and the node's name in that child's `--node-name` argument.

use std::net::SocketAddr;
use std::sync::Arc;

use taskmesh::testing::proxy::Classifier;

/// Names the node that dialed each connection (a warning line when it cannot tell:
/// the connection then follows the proxy's own mode).
pub fn classifier() -> Classifier {
    Arc::new(|client, proxy| {
        let name = socket_inode(client, proxy).and_then(holder);
        if name.is_none() {
            eprintln!("harness: no node dialed {client} -> {proxy}; it follows the proxy's mode");
        }
        name
    })
}

/// The inode of the IPv4 socket whose local end is `local` and remote end `remote`.
fn socket_inode(local: SocketAddr, remote: SocketAddr) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let (local, remote) = (hex(local)?, hex(remote)?);
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let ends = (fields.get(1).copied(), fields.get(2).copied());
        if ends != (Some(local.as_str()), Some(remote.as_str())) {
            return None;
        }
        fields.get(9)?.parse().ok()
    })
}

/// An IPv4 address as `/proc/net/tcp` writes it: the address's bytes as a native
/// integer, then the port, in hex.
fn hex(addr: SocketAddr) -> Option<String> {
    let SocketAddr::V4(v4) = addr else {
        return None;
    };
    let ip = u32::from_ne_bytes(v4.ip().octets());
    Some(format!("{ip:08X}:{:04X}", v4.port()))
}

/// The `--node-name` of the child process that holds the socket `inode`.
fn holder(inode: u64) -> Option<String> {
    let link = format!("socket:[{inode}]");
    let holds = |pid: &u32| {
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten();
        let mut targets = fds
            .flatten()
            .filter_map(|fd| std::fs::read_link(fd.path()).ok());
        targets.any(|t| t.as_os_str() == link.as_str())
    };
    let pid = children().into_iter().find(holds)?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let mut args = cmdline.split(|b| *b == 0);
    args.find(|a| *a == b"--node-name")?;
    Some(String::from_utf8_lossy(args.next()?).into_owned())
}

/// The pids of this process's children (each `/proc/{pid}/stat` names its parent).
fn children() -> Vec<u32> {
    let me = std::process::id();
    let entries = std::fs::read_dir("/proc").into_iter().flatten().flatten();
    let pids = entries.filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok());
    pids.filter(|pid| parent(*pid) == Some(me)).collect()
}

/// A process's parent, from `/proc/{pid}/stat` (`pid (comm) state ppid …`).
fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(1)?.parse().ok()
}
