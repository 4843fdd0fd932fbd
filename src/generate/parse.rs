//! Reading a cluster description (TOML) into the [`model`](super::model):
//! syntax, types and unknown keys are refused here with file and line;
//! whether the objects fit together is lint's job.

use super::model::*;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use toml::Spanned;

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("failed to read cluster description {file}: {err}")]
    Read { file: String, err: std::io::Error },
    #[error("{file}: refused: larger than {max_mb} MB, which no cluster description needs")]
    TooLarge { file: String, max_mb: u64 },
    #[error("{file}:{line}: {message}")]
    Syntax { file: String, line: usize, message: String },
    #[error("{file}:{line}: invalid {what}: {why}")]
    Invalid { file: String, line: usize, what: String, why: String },
}

/// The largest description read: a 1,000-node, 10,000-resource cluster
/// takes a few MB; anything much bigger is not a description.
pub const MAX_SIZE: u64 = 16 << 20;

/// Read and parse a description file (refused before parsing when it is
/// larger than [`MAX_SIZE`]).
pub fn load(path: &Path) -> Result<Description, ParseError> {
    use std::io::Read;
    let file = path.display().to_string();
    let read = |err| ParseError::Read { file: file.clone(), err };
    let f = std::fs::File::open(path).map_err(read)?;
    let mut bytes = Vec::new();
    f.take(MAX_SIZE + 1).read_to_end(&mut bytes).map_err(read)?;
    if bytes.len() as u64 > MAX_SIZE {
        return Err(ParseError::TooLarge { file, max_mb: MAX_SIZE >> 20 });
    }
    let text = String::from_utf8(bytes).map_err(|e| ParseError::Syntax {
        file: file.clone(),
        line: e.as_bytes()[..e.utf8_error().valid_up_to()].iter().filter(|b| **b == b'\n').count() + 1,
        message: "not UTF-8 text".into(),
    })?;
    parse(&file, &text)
}

/// Parse description text; `file` is only used in messages.
pub fn parse(file: &str, text: &str) -> Result<Description, ParseError> {
    let lines = Lines::new(text);
    let raw: RawFile = toml::from_str(text).map_err(|e| ParseError::Syntax {
        file: file.to_string(),
        line: e.span().map_or(1, |s| lines.of(s.start)),
        message: e.message().trim().to_string(),
    })?;
    Builder { file, lines }.build(raw)
}

/// Byte offset -> 1-based line number.
struct Lines {
    starts: Vec<usize>,
}

impl Lines {
    fn new(text: &str) -> Lines {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines { starts }
    }
    fn of(&self, offset: usize) -> usize {
        self.starts.partition_point(|s| *s <= offset)
    }
}

type Value = Spanned<toml::Value>;
type Table = BTreeMap<String, Value>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    cluster: RawCluster,
    #[serde(default)]
    node: Vec<RawNode>,
    fencing: Option<RawFencing>,
    #[serde(default)]
    properties: Table,
    #[serde(default)]
    resource_defaults: Table,
    #[serde(default)]
    op_defaults: Table,
    #[serde(default)]
    resource: Vec<RawPrimitive>,
    #[serde(default)]
    group: Vec<RawGroup>,
    #[serde(default)]
    clone: Vec<RawClone>,
    #[serde(default)]
    location: Vec<RawLocation>,
    #[serde(default)]
    colocation: Vec<RawColocation>,
    #[serde(default)]
    order: Vec<RawOrder>,
    #[serde(default)]
    failover_domain: Vec<RawDomain>,
    #[serde(default)]
    service: Vec<RawService>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    name: Spanned<String>,
    stacks: Option<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: Spanned<String>,
    id: Option<Spanned<i64>>,
    #[serde(default)]
    attributes: Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFencing {
    enabled: Option<Spanned<bool>>,
    sbd: Option<RawSbd>,
    #[serde(default)]
    device: Vec<RawFenceDevice>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSbd {
    devices: Spanned<Vec<String>>,
    id: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFenceDevice {
    id: Spanned<String>,
    agent: Spanned<String>,
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    ports: Table,
    #[serde(default)]
    params: Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrimitive {
    id: Spanned<String>,
    agent: Spanned<String>,
    #[serde(default)]
    params: Table,
    #[serde(default)]
    meta: Table,
    #[serde(default)]
    op: Vec<RawOp>,
    monitor: Option<bool>,
    #[serde(default)]
    rgmanager: Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOp {
    name: Spanned<String>,
    interval: Option<Value>,
    timeout: Option<Value>,
    role: Option<Spanned<String>>,
    on_fail: Option<Spanned<String>>,
    force: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    id: Spanned<String>,
    resources: Vec<Spanned<String>>,
    #[serde(default)]
    meta: Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClone {
    id: Spanned<String>,
    resource: Spanned<String>,
    interleave: Option<bool>,
    ordered: Option<bool>,
    notify: Option<bool>,
    #[serde(default)]
    promotable: bool,
    max: Option<u32>,
    node_max: Option<u32>,
    promoted_max: Option<u32>,
    promoted_node_max: Option<u32>,
    #[serde(default)]
    meta: Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLocation {
    id: Option<Spanned<String>>,
    resource: Spanned<String>,
    prefer: Option<Spanned<String>>,
    avoid: Option<Spanned<String>>,
    score: Option<Value>,
    rule: Option<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    score: Value,
    role: Option<Spanned<String>>,
    boolean: Option<Spanned<String>>,
    expression: Vec<RawExpression>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpression {
    attribute: Spanned<String>,
    operation: Spanned<String>,
    value: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColocation {
    id: Option<Spanned<String>>,
    resource: Spanned<String>,
    with: Spanned<String>,
    score: Option<Value>,
    role: Option<Spanned<String>>,
    with_role: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOrder {
    id: Option<Spanned<String>>,
    first: Spanned<String>,
    then: Spanned<String>,
    first_action: Option<Spanned<String>>,
    then_action: Option<Spanned<String>>,
    kind: Option<Spanned<String>>,
    symmetrical: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDomain {
    name: Spanned<String>,
    #[serde(default)]
    ordered: bool,
    #[serde(default)]
    restricted: bool,
    #[serde(default)]
    nofailback: bool,
    #[serde(default)]
    nodes: Vec<RawDomainNode>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDomainNode {
    name: Spanned<String>,
    priority: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: Spanned<String>,
    domain: Option<Spanned<String>>,
    autostart: Option<bool>,
    exclusive: Option<bool>,
    recovery: Option<Spanned<String>>,
    max_restarts: Option<u32>,
    restart_expire_time: Option<u32>,
    resources: Vec<Spanned<String>>,
}

/// Pacemaker's interval specification (crm_get_msec and ISO 8601
/// durations), restricted to what crm and pcs pass through unchanged.
pub fn valid_duration(s: &str) -> bool {
    if let Some(iso) = s.strip_prefix('P') {
        return !iso.is_empty() && iso.chars().all(|c| c.is_ascii_digit() || "YMWDTHS".contains(c));
    }
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    digits > 0 && digits <= 12 && matches!(&s[digits..], "" | "ms" | "s" | "m" | "min" | "h" | "hr")
}

/// A valid duration in milliseconds, so `30`, `30s` and `PT30S` compare
/// equal (Pacemaker tells operations apart by name and interval).
pub fn duration_ms(s: &str) -> Option<u64> {
    if let Some(iso) = s.strip_prefix('P') {
        let (mut total, mut num, mut time) = (0u64, 0u64, false);
        for c in iso.chars() {
            match c {
                'T' => time = true,
                d if d.is_ascii_digit() => num = num.checked_mul(10)?.checked_add(u64::from(d.to_digit(10)?))?,
                unit => {
                    let secs = match (unit, time) {
                        ('Y', false) => 365 * 86400,
                        ('M', false) => 30 * 86400,
                        ('W', false) => 7 * 86400,
                        ('D', false) => 86400,
                        ('H', true) => 3600,
                        ('M', true) => 60,
                        ('S', true) => 1,
                        _ => return None,
                    };
                    total = total.checked_add(num.checked_mul(secs * 1000)?)?;
                    num = 0;
                }
            }
        }
        return Some(total);
    }
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..digits].parse().ok()?;
    let unit = match &s[digits..] {
        "ms" => 1,
        "" | "s" => 1000,
        "m" | "min" => 60_000,
        "h" | "hr" => 3_600_000,
        _ => return None,
    };
    n.checked_mul(unit)
}

const ACTIONS: &[&str] = &["start", "stop", "promote", "demote"];
const KINDS: &[&str] = &["Mandatory", "Optional", "Serialize"];
const OPERATIONS: &[&str] = &["lt", "gt", "lte", "gte", "eq", "ne", "defined", "not_defined"];
const CLASSES: &[&str] = &["ocf", "stonith", "systemd", "lsb", "service"];

struct Builder<'a> {
    file: &'a str,
    lines: Lines,
}

impl Builder<'_> {
    fn line<T>(&self, s: &Spanned<T>) -> usize {
        self.lines.of(s.span().start)
    }

    fn invalid(&self, line: usize, what: &str, why: impl Into<String>) -> ParseError {
        ParseError::Invalid { file: self.file.to_string(), line, what: what.to_string(), why: why.into() }
    }

    fn text(&self, v: &Spanned<String>) -> (String, usize) {
        (v.get_ref().clone(), self.line(v))
    }

    fn reference(&self, v: &Spanned<String>) -> Ref {
        Ref { id: v.get_ref().clone(), line: self.line(v) }
    }

    /// A parameter or attribute value: strings, integers, floats and
    /// booleans become their text; arrays and tables are refused.
    fn scalar(&self, what: &str, v: &Value) -> Result<String, ParseError> {
        match v.get_ref() {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(i) => Ok(i.to_string()),
            toml::Value::Float(f) => Ok(f.to_string()),
            toml::Value::Boolean(b) => Ok(b.to_string()),
            toml::Value::Datetime(d) => Ok(d.to_string()),
            _ => Err(self.invalid(self.line(v), what, "a value must be text, a number or a boolean")),
        }
    }

    /// An interval or timeout as Pacemaker reads it: seconds as a number,
    /// or a number with a unit (ms, s, m/min, h/hr), or ISO 8601 (P...).
    fn duration(&self, what: &str, v: &Value) -> Result<String, ParseError> {
        let text = self.scalar(what, v)?;
        if valid_duration(&text) {
            Ok(text)
        } else {
            let why =
                format!("{text:?}: seconds (30), a number with a unit (500ms, 30s, 5min, 1h) or ISO 8601 (PT30S)");
            Err(self.invalid(self.line(v), what, why))
        }
    }

    fn pairs(&self, what: &str, table: &Table) -> Result<Vec<Pair>, ParseError> {
        table
            .iter()
            .map(|(name, v)| {
                Ok(Pair { name: name.clone(), value: self.scalar(&format!("{what} '{name}'"), v)?, line: self.line(v) })
            })
            .collect()
    }

    fn score(&self, v: &Value) -> Result<Score, ParseError> {
        let line = self.line(v);
        match v.get_ref() {
            toml::Value::Integer(i) => Ok(Score::Value(*i)),
            toml::Value::String(s) => match s.trim().to_ascii_uppercase().as_str() {
                "INFINITY" | "+INFINITY" | "INF" | "+INF" => Ok(Score::Infinity),
                "-INFINITY" | "-INF" => Ok(Score::NegInfinity),
                t => t.parse::<i64>().map(Score::Value).map_err(|_| {
                    self.invalid(line, "score", format!("{s:?} is not an integer, INFINITY or -INFINITY"))
                }),
            },
            _ => Err(self.invalid(line, "score", "an integer, \"INFINITY\" or \"-INFINITY\"")),
        }
    }

    fn role(&self, v: &Spanned<String>) -> Result<Role, ParseError> {
        match v.get_ref().as_str() {
            "Started" => Ok(Role::Started),
            "Promoted" => Ok(Role::Promoted),
            "Unpromoted" => Ok(Role::Unpromoted),
            other => Err(self.invalid(
                self.line(v),
                "role",
                format!("{other:?}: one of Started, Promoted, Unpromoted (Master/Slave are the deprecated names)"),
            )),
        }
    }

    fn word(&self, v: &Spanned<String>, what: &str, choices: &[&str]) -> Result<String, ParseError> {
        if choices.contains(&v.get_ref().as_str()) {
            Ok(v.get_ref().clone())
        } else {
            Err(self.invalid(self.line(v), what, format!("{:?}: one of {}", v.get_ref(), choices.join(", "))))
        }
    }

    fn agent(&self, v: &Spanned<String>) -> Result<AgentRef, ParseError> {
        let line = self.line(v);
        let s = v.get_ref();
        let parts: Vec<&str> = s.split(':').collect();
        let bad = |why: &str| self.invalid(line, "agent", format!("{s:?}: {why}"));
        let agent = match parts.as_slice() {
            ["ocf", provider, kind] => {
                AgentRef { class: "ocf".into(), provider: Some(provider.to_string()), kind: kind.to_string() }
            }
            ["ocf", ..] => return Err(bad("an OCF agent is written ocf:provider:type, e.g. ocf:haven:vip")),
            [class, kind] => AgentRef { class: class.to_string(), provider: None, kind: kind.to_string() },
            _ => return Err(bad("written class:provider:type (ocf) or class:type (stonith, systemd, lsb, service)")),
        };
        if !CLASSES.contains(&agent.class.as_str()) {
            return Err(bad(&format!("unknown class '{}' (known: {})", agent.class, CLASSES.join(", "))));
        }
        let word_ok = |w: &str| !w.is_empty() && !w.contains(|c: char| c.is_whitespace() || c.is_control());
        if !word_ok(&agent.kind) || !agent.provider.as_deref().is_none_or(word_ok) {
            return Err(bad("empty or blank part"));
        }
        Ok(agent)
    }

    fn build(&self, raw: RawFile) -> Result<Description, ParseError> {
        let mut d = Description { file: self.file.to_string(), ..Description::default() };
        d.cluster = self.cluster(&raw.cluster)?;
        d.nodes = raw.node.iter().enumerate().map(|(i, n)| self.node(i, n)).collect::<Result<_, _>>()?;
        if let Some(f) = &raw.fencing {
            d.fencing = self.fencing(f)?;
        }
        d.properties = self.pairs("property", &raw.properties)?;
        d.resource_defaults = self.pairs("resource default", &raw.resource_defaults)?;
        d.op_defaults = self.pairs("operation default", &raw.op_defaults)?;
        d.resources = raw.resource.iter().map(|r| self.primitive(r)).collect::<Result<_, _>>()?;
        for g in &raw.group {
            let (id, line) = self.text(&g.id);
            let resources = g.resources.iter().map(|r| self.reference(r)).collect();
            d.groups.push(Group { id, resources, meta: self.pairs("meta attribute", &g.meta)?, line });
        }
        d.clones = raw.clone.iter().map(|c| self.clone_resource(c)).collect::<Result<_, _>>()?;
        d.locations = raw.location.iter().map(|l| self.location(l)).collect::<Result<_, _>>()?;
        d.colocations = raw.colocation.iter().map(|c| self.colocation(c)).collect::<Result<_, _>>()?;
        d.orders = raw.order.iter().map(|o| self.order(o)).collect::<Result<_, _>>()?;
        d.domains = raw.failover_domain.iter().map(|fd| self.domain(fd)).collect();
        d.services = raw.service.iter().map(|s| self.service(s)).collect::<Result<_, _>>()?;
        Ok(d)
    }

    fn cluster(&self, c: &RawCluster) -> Result<Cluster, ParseError> {
        let (name, line) = self.text(&c.name);
        let mut stacks = Vec::new();
        for s in c.stacks.iter().flatten() {
            let stack = match s.get_ref().as_str() {
                "pacemaker" => Stack::Pacemaker,
                "rhcs" => Stack::Rhcs,
                other => return Err(self.invalid(self.line(s), "stack", format!("{other:?}: pacemaker or rhcs"))),
            };
            if !stacks.contains(&stack) {
                stacks.push(stack);
            }
        }
        if stacks.is_empty() {
            stacks.push(Stack::Pacemaker);
        }
        Ok(Cluster { name, stacks, line })
    }

    fn node(&self, index: usize, n: &RawNode) -> Result<Node, ParseError> {
        let (name, line) = self.text(&n.name);
        let id = match &n.id {
            Some(v) => u32::try_from(*v.get_ref())
                .ok()
                .filter(|id| *id > 0)
                .ok_or_else(|| self.invalid(self.line(v), "node id", "a positive integer"))?,
            None => u32::try_from(index + 1).unwrap_or(u32::MAX),
        };
        Ok(Node { name, id, attributes: self.pairs("node attribute", &n.attributes)?, line })
    }

    fn fencing(&self, f: &RawFencing) -> Result<Fencing, ParseError> {
        let mut fencing = Fencing {
            enabled: f.enabled.as_ref().is_none_or(|e| *e.get_ref()),
            devices: Vec::new(),
            line: f.enabled.as_ref().map_or(0, |e| self.line(e)),
        };
        if let Some(sbd) = &f.sbd {
            let line = self.line(&sbd.devices);
            if sbd.devices.get_ref().is_empty() {
                return Err(self.invalid(line, "fencing.sbd.devices", "at least one shared disk"));
            }
            let id = sbd.id.as_ref().map_or_else(|| "fence-sbd".to_string(), |i| i.get_ref().clone());
            // fence_sbd takes the disks as one comma-separated list.
            let devices = Pair { name: "devices".into(), value: sbd.devices.get_ref().join(","), line };
            fencing.devices.push(FenceDevice {
                id,
                agent: "fence_sbd".into(),
                params: vec![devices],
                hosts: Vec::new(),
                ports: Vec::new(),
                line,
            });
        }
        for dev in &f.device {
            let (id, line) = self.text(&dev.id);
            let agent = dev.agent.get_ref();
            let agent = agent.strip_prefix("stonith:").unwrap_or(agent).to_string();
            if agent.is_empty() || agent.contains(|c: char| c.is_whitespace() || c == ':') {
                return Err(self.invalid(self.line(&dev.agent), "fence agent", format!("{agent:?}")));
            }
            fencing.devices.push(FenceDevice {
                id,
                agent,
                params: self.pairs("fence parameter", &dev.params)?,
                hosts: dev.hosts.clone(),
                ports: self.pairs("fence port", &dev.ports)?,
                line,
            });
        }
        Ok(fencing)
    }

    fn op(&self, o: &RawOp) -> Result<Op, ParseError> {
        const ON_FAIL: &[&str] = &["ignore", "block", "stop", "restart", "fence", "standby", "demote"];
        let (name, line) = self.text(&o.name);
        let interval = match &o.interval {
            Some(v) => self.duration("interval", v)?,
            None => "0".to_string(),
        };
        Ok(Op {
            name,
            interval,
            timeout: o.timeout.as_ref().map(|v| self.duration("timeout", v)).transpose()?,
            role: o.role.as_ref().map(|v| self.role(v)).transpose()?,
            on_fail: o.on_fail.as_ref().map(|v| self.word(v, "on_fail", ON_FAIL)).transpose()?,
            force: o.force.unwrap_or(false),
            line,
        })
    }

    fn primitive(&self, r: &RawPrimitive) -> Result<Primitive, ParseError> {
        let (id, line) = self.text(&r.id);
        Ok(Primitive {
            id,
            agent: self.agent(&r.agent)?,
            agent_line: self.line(&r.agent),
            params: self.pairs("parameter", &r.params)?,
            meta: self.pairs("meta attribute", &r.meta)?,
            ops: r.op.iter().map(|o| self.op(o)).collect::<Result<_, _>>()?,
            default_monitor: r.monitor.unwrap_or(true),
            rgmanager: self.pairs("rgmanager attribute", &r.rgmanager)?,
            line,
        })
    }

    /// A clone count: at least 1 (0 instances is a stopped clone: say so
    /// with target-role).
    fn count(&self, line: usize, what: &str, v: Option<u32>) -> Result<Option<u32>, ParseError> {
        match v {
            Some(0) => Err(self.invalid(line, what, "at least 1 (stop a clone with meta target-role = \"Stopped\")")),
            v => Ok(v),
        }
    }

    fn clone_resource(&self, c: &RawClone) -> Result<CloneResource, ParseError> {
        let (id, line) = self.text(&c.id);
        Ok(CloneResource {
            id,
            resource: self.reference(&c.resource),
            interleave: c.interleave,
            ordered: c.ordered,
            notify: c.notify,
            promotable: c.promotable,
            max: self.count(line, "clone max", c.max)?,
            node_max: self.count(line, "clone node_max", c.node_max)?,
            promoted_max: self.count(line, "clone promoted_max", c.promoted_max)?,
            promoted_node_max: self.count(line, "clone promoted_node_max", c.promoted_node_max)?,
            meta: self.pairs("meta attribute", &c.meta)?,
            line,
        })
    }

    fn colocation(&self, c: &RawColocation) -> Result<Colocation, ParseError> {
        Ok(Colocation {
            id: c.id.as_ref().map(|v| v.get_ref().clone()),
            resource: self.reference(&c.resource),
            with: self.reference(&c.with),
            score: c.score.as_ref().map(|s| self.score(s)).transpose()?.unwrap_or(Score::Infinity),
            role: c.role.as_ref().map(|v| self.role(v)).transpose()?,
            with_role: c.with_role.as_ref().map(|v| self.role(v)).transpose()?,
            line: self.line(&c.resource),
        })
    }

    fn order(&self, o: &RawOrder) -> Result<Order, ParseError> {
        Ok(Order {
            id: o.id.as_ref().map(|v| v.get_ref().clone()),
            first: self.reference(&o.first),
            then: self.reference(&o.then),
            first_action: o.first_action.as_ref().map(|v| self.word(v, "first_action", ACTIONS)).transpose()?,
            then_action: o.then_action.as_ref().map(|v| self.word(v, "then_action", ACTIONS)).transpose()?,
            kind: o.kind.as_ref().map(|v| self.word(v, "order kind", KINDS)).transpose()?,
            symmetrical: o.symmetrical,
            line: self.line(&o.first),
        })
    }

    fn domain(&self, fd: &RawDomain) -> FailoverDomain {
        let (name, line) = self.text(&fd.name);
        let nodes = fd
            .nodes
            .iter()
            .map(|n| DomainNode { node: self.reference(&n.name), priority: n.priority.unwrap_or(1).max(1) })
            .collect();
        FailoverDomain { name, ordered: fd.ordered, restricted: fd.restricted, nofailback: fd.nofailback, nodes, line }
    }

    fn service(&self, s: &RawService) -> Result<Service, ParseError> {
        let (name, line) = self.text(&s.name);
        let recovery = match s.recovery.as_ref() {
            None => Recovery::Restart,
            Some(v) => match self.word(v, "recovery", &["restart", "relocate", "disable"])?.as_str() {
                "relocate" => Recovery::Relocate,
                "disable" => Recovery::Disable,
                _ => Recovery::Restart,
            },
        };
        Ok(Service {
            name,
            domain: s.domain.as_ref().map(|v| self.reference(v)),
            autostart: s.autostart.unwrap_or(true),
            exclusive: s.exclusive.unwrap_or(false),
            recovery,
            max_restarts: s.max_restarts.unwrap_or(0),
            restart_expire_time: s.restart_expire_time.unwrap_or(0),
            resources: s.resources.iter().map(|r| self.reference(r)).collect(),
            line,
        })
    }

    fn location(&self, l: &RawLocation) -> Result<Location, ParseError> {
        let line = self.line(&l.resource);
        let placement = match (&l.prefer, &l.avoid, &l.rule) {
            (Some(n), None, None) => {
                let score = l.score.as_ref().map(|s| self.score(s)).transpose()?.unwrap_or(Score::Infinity);
                if !score.is_positive() {
                    return Err(self.invalid(line, "location", "prefer needs a positive score (use avoid)"));
                }
                Placement::Node { node: self.reference(n), score }
            }
            (None, Some(n), None) => {
                let score = l.score.as_ref().map(|s| self.score(s)).transpose()?.unwrap_or(Score::NegInfinity);
                let score = match score {
                    // "avoid = n, score = 100" reads naturally as a penalty of 100.
                    Score::Value(v) if v > 0 => Score::Value(-v),
                    Score::Infinity => Score::NegInfinity,
                    s => s,
                };
                if !score.is_negative() {
                    return Err(self.invalid(line, "location", "avoid needs a non-zero score"));
                }
                Placement::Node { node: self.reference(n), score }
            }
            (None, None, Some(rule)) => {
                if l.score.is_some() {
                    return Err(self.invalid(line, "location", "a rule carries its own score"));
                }
                let mut expressions = Vec::new();
                for e in &rule.expression {
                    let operation = self.word(&e.operation, "rule operation", OPERATIONS)?;
                    let value = e.value.as_ref().map(|v| self.scalar("rule value", v)).transpose()?;
                    let line = self.line(&e.attribute);
                    let unary = operation == "defined" || operation == "not_defined";
                    if unary == value.is_some() {
                        let why =
                            if unary { "defined/not_defined take no value" } else { "this operation needs a value" };
                        return Err(self.invalid(line, "rule expression", why));
                    }
                    expressions.push(Expression { attribute: e.attribute.get_ref().clone(), operation, value, line });
                }
                if expressions.is_empty() {
                    return Err(self.invalid(line, "rule", "at least one [[location.rule.expression]]"));
                }
                Placement::Rule(Rule {
                    score: self.score(&rule.score)?,
                    role: rule.role.as_ref().map(|v| self.role(v)).transpose()?,
                    boolean: rule
                        .boolean
                        .as_ref()
                        .map(|v| self.word(v, "boolean", &["and", "or"]))
                        .transpose()?
                        .unwrap_or_else(|| "and".into()),
                    expressions,
                })
            }
            _ => return Err(self.invalid(line, "location", "give exactly one of prefer, avoid or [location.rule]")),
        };
        Ok(Location {
            id: l.id.as_ref().map(|v| v.get_ref().clone()),
            resource: self.reference(&l.resource),
            placement,
            line,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_point_at_the_offending_key() {
        let text = "[cluster]\nname = \"c\"\n\n[[resource]]\nid = \"a\"\nagent = \"ocf:haven\"\n";
        let e = parse("t.toml", text).unwrap_err();
        assert!(e.to_string().starts_with("t.toml:6: invalid agent"), "{e}");
        let e = parse("t.toml", "[cluster]\nname = \"c\"\nbogus = 1\n").unwrap_err();
        assert!(e.to_string().starts_with("t.toml:3:"), "{e}");
    }

    #[test]
    fn scores_and_defaults() {
        let text = r#"
[cluster]
name = "c"
[[node]]
name = "n1"
[[location]]
resource = "r"
avoid = "n1"
[[location]]
resource = "r"
prefer = "n1"
score = 50
"#;
        let d = parse("t.toml", text).unwrap();
        assert_eq!(d.cluster.stacks, vec![Stack::Pacemaker]);
        assert_eq!(d.nodes[0].id, 1);
        assert!(matches!(d.locations[0].placement, Placement::Node { score: Score::NegInfinity, .. }));
        assert!(matches!(d.locations[1].placement, Placement::Node { score: Score::Value(50), .. }));
        assert_eq!(d.locations[1].line, 10);
    }

    #[test]
    fn durations_compare_by_length() {
        assert_eq!(duration_ms("30"), duration_ms("PT30S"));
        assert_eq!(duration_ms("1min"), Some(60_000));
        assert_eq!(duration_ms("PT1M30S"), Some(90_000));
        assert_eq!(duration_ms("500ms"), Some(500));
    }

    #[test]
    fn values_become_text() {
        let text = "[cluster]\nname = \"c\"\n[[resource]]\nid = \"r\"\nagent = \"ocf:heartbeat:Dummy\"\n\
                    params = { a = 1, b = true, c = \"x\" }\n";
        let d = parse("t.toml", text).unwrap();
        let p: Vec<_> = d.resources[0].params.iter().map(|p| (p.name.as_str(), p.value.as_str())).collect();
        assert_eq!(p, vec![("a", "1"), ("b", "true"), ("c", "x")]);
        assert_eq!(d.resources[0].params[0].line, 6);
    }
}
