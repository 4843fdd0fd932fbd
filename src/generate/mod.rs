//! `haven generate`: one cluster description (TOML) in, the configuration
//! Pacemaker (CIB XML, crm shell, pcs) or RHCS (cluster.conf) loads out.
//! Descriptions that lint refuses are never rendered.
//!
//! parse -> model -> lint -> pacemaker (the shared Pacemaker form) ->
//! cib / crm / pcs; model -> cluster_conf.

pub mod agents;
pub mod cib;
pub mod cluster_conf;
pub mod constraints;
pub mod crm;
pub mod lint;
pub mod model;
pub mod options;
pub mod pacemaker;
pub mod parse;
pub mod pcs;

use model::{Description, Stack};
use std::path::Path;

/// The output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Cib,
    Crm,
    Pcs,
    ClusterConf,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "cib" | "xml" => Some(Format::Cib),
            "crm" => Some(Format::Crm),
            "pcs" => Some(Format::Pcs),
            "cluster.conf" | "cluster-conf" | "rhcs" => Some(Format::ClusterConf),
            _ => None,
        }
    }

    pub fn stack(self) -> Stack {
        match self {
            Format::ClusterConf => Stack::Rhcs,
            _ => Stack::Pacemaker,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Cib => "cib",
            Format::Crm => "crm",
            Format::Pcs => "pcs",
            Format::ClusterConf => "cluster.conf",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(transparent)]
    Parse(#[from] parse::ParseError),
    #[error("{file}: refused, lint found {} problem(s):\n{}", findings.len(), findings.iter().map(|f| f.to_string()).collect::<Vec<_>>().join("\n"))]
    Lint { file: String, findings: Vec<lint::Finding> },
    #[error("{file}: cannot write {format}: the description targets {targets} (set [cluster] stacks to include \"{wanted}\")")]
    StackNotTargeted { file: String, format: &'static str, targets: String, wanted: &'static str },
    #[error(transparent)]
    ClusterConf(#[from] cluster_conf::ClusterConfError),
}

/// Options that change how output is written, not what it means.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    pub pcs: pcs::Options,
    /// Check parameters of installed agents too (through crm_resource).
    pub installed_metadata: bool,
}

/// Lint a description; no findings means it may be generated.
pub fn check(d: &Description, opts: &Options) -> lint::Report {
    lint::check(d, &agents::SystemCatalog::new(opts.installed_metadata), opts.installed_metadata)
}

/// The name a generated file gives for its source (the file name only, so
/// output does not depend on where the command ran).
fn source_name(d: &Description) -> String {
    Path::new(&d.file).file_name().map_or_else(|| d.file.clone(), |f| f.to_string_lossy().into_owned())
}

/// Render a description that has passed lint in one format.
pub fn render(d: &Description, format: Format, opts: &Options) -> Result<String, GenerateError> {
    let wanted = format.stack();
    if !d.cluster.targets(wanted) {
        let targets = d.cluster.stacks.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
        return Err(GenerateError::StackNotTargeted {
            file: d.file.clone(),
            format: format.as_str(),
            targets,
            wanted: wanted.as_str(),
        });
    }
    let source = source_name(d);
    Ok(match format {
        Format::Cib => cib::render(&pacemaker::build(d), &source),
        Format::Crm => crm::render(&pacemaker::build(d), &source),
        Format::Pcs => pcs::render(&pacemaker::build(d), &source, opts.pcs),
        Format::ClusterConf => cluster_conf::render(d, &source)?,
    })
}

/// Load, lint and render: what `haven generate --format F FILE` does.
pub fn generate(path: &Path, format: Format, opts: &Options) -> Result<String, GenerateError> {
    let d = parse::load(path)?;
    let findings = check(&d, opts).findings;
    if !findings.is_empty() {
        return Err(GenerateError::Lint { file: d.file.clone(), findings });
    }
    render(&d, format, opts)
}
