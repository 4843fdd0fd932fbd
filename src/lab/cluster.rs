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
    /// Read crm_mon's XML with quick-xml's pull parser: elements are
    /// told apart by the element they are in.
    pub fn parse(xml: &str) -> Result<Snapshot, String> {
        use quick_xml::events::Event;
        let mut reader = quick_xml::Reader::from_str(xml);
        let mut s = Snapshot::default();
        let mut path: Vec<Vec<u8>> = Vec::new();
        let mut open: Option<Placement> = None;
        loop {
            let event = reader.read_event().map_err(|e| e.to_string())?;
            let (e, empty) = match &event {
                Event::Start(e) => (e, false),
                Event::Empty(e) => (e, true),
                Event::End(e) => {
                    if e.local_name().as_ref() == b"resource" {
                        s.resources.extend(open.take());
                    }
                    path.pop();
                    continue;
                }
                Event::Eof => break,
                _ => continue,
            };
            let attr = |name: &str| -> String {
                e.try_get_attribute(name)
                    .ok()
                    .flatten()
                    .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
                    .unwrap_or_default()
            };
            let parent = path.last().map(Vec::as_slice);
            match e.local_name().as_ref() {
                b"current_dc" => s.dc = attr("present") == "true",
                b"node" if parent == Some(b"nodes") => {
                    let name = attr("name");
                    if !name.is_empty() {
                        s.nodes.push((name, attr("online") == "true"));
                    }
                }
                b"node" if parent == Some(b"resource") => {
                    if let Some(p) = open.as_mut() {
                        p.nodes.push(attr("name"));
                    }
                }
                b"resource" if path.iter().any(|p| p == b"resources") => {
                    let p = Placement {
                        id: attr("id"),
                        agent: attr("resource_agent"),
                        role: attr("role"),
                        active: attr("active") == "true",
                        failed: attr("failed") == "true",
                        nodes: Vec::new(),
                    };
                    if empty {
                        s.resources.push(p);
                    } else {
                        open = Some(p);
                    }
                }
                _ => {}
            }
            if !empty {
                path.push(e.local_name().as_ref().to_vec());
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
