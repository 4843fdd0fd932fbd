//! What Pacemaker says about the lab: `crm_mon --output-as=xml` run inside
//! a node, read into nodes (online or not) and where each resource runs.

use super::error::LabError;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub dc: bool,
    /// (node, online)
    pub nodes: Vec<(String, bool)>,
    pub resources: Vec<Placement>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    pub id: String,
    pub agent: String,
    pub role: String,
    pub active: bool,
    pub failed: bool,
    pub nodes: Vec<String>,
}

impl Snapshot {
    pub fn parse(xml: &str) -> Result<Snapshot, String> {
        let doc = roxmltree::Document::parse(xml).map_err(|e| e.to_string())?;
        let root = doc.root_element();
        let mut s = Snapshot::default();
        for n in root.descendants() {
            match n.tag_name().name() {
                "current_dc" => s.dc = n.attribute("present") == Some("true"),
                "node" if n.parent().is_some_and(|p| p.tag_name().name() == "nodes") => {
                    if let Some(name) = n.attribute("name") {
                        s.nodes.push((name.to_string(), n.attribute("online") == Some("true")));
                    }
                }
                "resource" if n.ancestors().any(|a| a.tag_name().name() == "resources") => {
                    s.resources.push(Placement {
                        id: n.attribute("id").unwrap_or_default().to_string(),
                        agent: n.attribute("resource_agent").unwrap_or_default().to_string(),
                        role: n.attribute("role").unwrap_or_default().to_string(),
                        active: n.attribute("active") == Some("true"),
                        failed: n.attribute("failed") == Some("true"),
                        nodes: n
                            .children()
                            .filter(|c| c.has_tag_name("node"))
                            .filter_map(|c| c.attribute("name").map(str::to_string))
                            .collect(),
                    })
                }
                _ => {}
            }
        }
        Ok(s)
    }

    /// Every listed node is online and a DC has been elected.
    pub fn formed(&self, expected: &[String]) -> bool {
        self.dc && expected.iter().all(|e| self.nodes.iter().any(|(n, on)| n == e && *on))
    }

    /// Every resource runs and none failed.
    pub fn settled(&self) -> bool {
        // "Starting" is active too, but not there yet.
        !self.resources.is_empty()
            && self
                .resources
                .iter()
                .all(|r| r.active && !r.failed && matches!(r.role.as_str(), "Started" | "Promoted" | "Unpromoted"))
    }

    /// Every resource runs and none failed, except clone instances the
    /// description keeps off some nodes: `allowed` says how many stopped
    /// instances of a primitive are expected (see
    /// [`super::standin::stopped_allowed`]).
    pub fn settled_allowing(&self, allowed: &[(String, usize)]) -> bool {
        let mut left: Vec<(String, usize)> = allowed.to_vec();
        !self.resources.is_empty()
            && self.resources.iter().all(|r| {
                if r.active && !r.failed && matches!(r.role.as_str(), "Started" | "Promoted" | "Unpromoted") {
                    return true;
                }
                match left.iter_mut().find(|(id, n)| *id == r.id && *n > 0) {
                    Some((_, n)) if !r.active && !r.failed && r.role == "Stopped" => {
                        *n -= 1;
                        true
                    }
                    _ => false,
                }
            })
    }

    /// The nodes a resource (any clone instance of it) runs on.
    pub fn where_is(&self, id: &str) -> Vec<String> {
        let mut out: Vec<String> =
            self.resources.iter().filter(|r| r.id == id && r.active).flat_map(|r| r.nodes.clone()).collect();
        out.sort();
        out.dedup();
        out
    }

    /// One line per resource: id, role, nodes.
    pub fn placement_text(&self) -> String {
        let mut s = String::new();
        for r in &self.resources {
            let nodes = if r.nodes.is_empty() { "-".to_string() } else { r.nodes.join(",") };
            let failed = if r.failed { " FAILED" } else { "" };
            s.push_str(&format!("  {:<20} {:<28} {:<10} {nodes}{failed}\n", r.id, r.agent, r.role));
        }
        s
    }
}

/// crm_mon of the lab as seen from `node`.
pub fn snapshot(node: &str) -> Result<Snapshot, LabError> {
    let xml = super::node::run_in(node, &["crm_mon", "--output-as=xml"])?;
    Snapshot::parse(&xml).map_err(|reason| LabError::State { path: "crm_mon --output-as=xml".into(), reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<pacemaker-result api-version="2.30" request="crm_mon --output-as=xml">
  <summary><current_dc present="true" version="2.1.5" name="lab1" id="1" with_quorum="true"/></summary>
  <nodes>
    <node name="lab1" id="1" online="true" standby="false" unclean="false"/>
    <node name="lab2" id="2" online="false" standby="false" unclean="true"/>
  </nodes>
  <resources>
    <resource id="lab-fence" resource_agent="stonith:fence_haven" role="Started" active="true" failed="false"><node name="lab1" id="1" cached="true"/></resource>
    <group id="site" number_resources="1">
      <resource id="web-ip" resource_agent="ocf:haven:vip" role="Started" active="true" failed="false"><node name="lab1" id="1" cached="true"/></resource>
    </group>
    <clone id="c" multi_state="false">
      <resource id="fs" resource_agent="ocf:haven:filesystem" role="Started" active="true" failed="false"><node name="lab1" id="1" cached="true"/></resource>
      <resource id="fs" resource_agent="ocf:haven:filesystem" role="Stopped" active="false" failed="false"/>
    </clone>
  </resources>
  <node_history><node name="lab1"><resource_history id="web-ip"/></node></node_history>
</pacemaker-result>"#;

    #[test]
    fn reads_nodes_and_placement() {
        let s = Snapshot::parse(XML).unwrap();
        assert!(s.dc);
        assert_eq!(s.nodes, vec![("lab1".to_string(), true), ("lab2".to_string(), false)]);
        assert_eq!(s.where_is("web-ip"), vec!["lab1".to_string()]);
        assert_eq!(s.where_is("fs"), vec!["lab1".to_string()]);
        assert!(!s.settled(), "a stopped clone instance is not settled");
        assert!(s.settled_allowing(&[("fs".into(), 1)]), "unless the clone is kept off a node");
        assert!(!s.settled_allowing(&[("web-ip".into(), 1)]));
        assert!(s.formed(&["lab1".into()]) && !s.formed(&["lab1".into(), "lab2".into()]));
    }
}
