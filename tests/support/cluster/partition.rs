//! Mesh faults between chosen nodes, whichever side dialed: each mesh proxy knows which
//! node dialed each of its connections ([`super::dialer`]), so the links between two
//! nodes are the connections `i` dialed to `j`'s proxy and those `j` dialed to `i`'s.

use taskmesh::testing::proxy::Mode;

use super::Cluster;

/// Heals a black-holed link: ends every connection it left useless (they lost bytes),
/// waits until none is left (bounded), then passes bytes again.
pub async fn heal(proxy: &taskmesh::testing::proxy::Proxy) {
    proxy.set_mode(Mode::Reset);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while proxy.connections() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "connections left after a reset"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    proxy.set_mode(Mode::Pass);
}

impl Cluster {
    /// Sets the mode of the mesh links between nodes `i` and `j`, both ways, open and
    /// new; `None` gives them their proxies' own mode again.
    pub fn set_link_mode(&self, i: usize, j: usize, mode: Option<Mode>) {
        self.mesh_proxy(j).set_source_mode(&self.name(i), mode);
        self.mesh_proxy(i).set_source_mode(&self.name(j), mode);
    }

    /// Cuts node `i` off from every peer (its mesh links black-holed; its database
    /// link untouched).
    pub fn isolate(&self, i: usize) {
        self.partition(&[i]);
    }

    /// Black-holes every mesh link between a node of `side` and a node not in it.
    pub fn partition(&self, side: &[usize]) {
        for &i in side {
            for j in (0..self.nodes.len()).filter(|j| !side.contains(j)) {
                self.set_link_mode(i, j, Some(Mode::BlackHole));
            }
        }
    }

    /// Gives every mesh link its proxy's own mode again, and sets every mesh proxy to
    /// [`Mode::Pass`]. Links that lived through a black hole lost bytes: the nodes'
    /// failure detectors are expected to drop them and dial again.
    pub fn heal_mesh(&self) {
        let n = self.nodes.len();
        for i in 0..n {
            for j in (i + 1)..n {
                self.set_link_mode(i, j, None);
            }
            self.mesh_proxy(i).set_mode(Mode::Pass);
        }
    }
}
