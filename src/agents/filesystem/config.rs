//! The filesystem configuration, typed: what the device is, how stop treats
//! users of the mount, where the status file goes.

use super::kinds;
use crate::ocf::params::{ParamError, Params};
use std::time::Duration;

/// What `device` names, which decides how a mount is recognised.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Device {
    /// A block device path (compared by device number).
    Block(String),
    /// LABEL=, UUID=, PARTLABEL=, PARTUUID= (resolved through /dev/disk/by-*).
    Tag { kind: &'static str, value: String },
    /// host:/export, //server/share (compared as text).
    Network(String),
    /// The source directory of a bind mount (compared by st_dev).
    Bind(String),
    /// tmpfs and friends: any name (compared as text with the fstype).
    Virtual(String),
}

impl Device {
    /// The source argument for mount(8).
    pub fn mount_source(&self) -> String {
        match self {
            Device::Tag { kind, value } => format!("{kind}={value}"),
            Device::Block(s) | Device::Network(s) | Device::Bind(s) | Device::Virtual(s) => s.clone(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ForceUnmount {
    Yes,
    Safe,
    No,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub device_text: String,
    pub device: Device,
    pub directory: String,
    pub fstype: String,
    pub options: String,
    pub statusfile_prefix: String,
    pub run_fsck: String,
    pub fast_stop: bool,
    pub force_clones: bool,
    pub force_unmount: ForceUnmount,
    pub term_signals: Vec<i32>,
    pub kill_signals: Vec<i32>,
    pub signal_delay: Duration,
    pub create_directory: bool,
}

fn malformed(name: &'static str, value: &str, why: &str) -> ParamError {
    ParamError::Malformed { name, value: value.to_string(), why: why.to_string() }
}

fn signals(p: &Params, name: &'static str) -> Result<Vec<i32>, ParamError> {
    let text = p.str(name)?.unwrap_or_default();
    text.split_whitespace()
        .map(|s| crate::mount::holders::signal_number(s).ok_or_else(|| malformed(name, text, "not a signal")))
        .collect()
}

impl Config {
    pub fn from_params(p: &Params) -> Result<Config, ParamError> {
        let device_text = p.str("device")?.ok_or(ParamError::Missing { name: "device" })?.to_string();
        let directory = p.str("directory")?.ok_or(ParamError::Missing { name: "directory" })?.to_string();
        let fstype = p.str("fstype")?.ok_or(ParamError::Missing { name: "fstype" })?.to_string();
        let options = p.str("options")?.unwrap_or_default().to_string();
        let is_bind = options.split(',').any(|o| o == "bind" || o == "rbind");
        let device = classify(&device_text, &fstype, is_bind)?;
        let force_unmount = match p.str("force_unmount")? {
            Some("false") => ForceUnmount::No,
            Some("safe") => ForceUnmount::Safe,
            _ => ForceUnmount::Yes,
        };
        Ok(Config {
            device,
            directory,
            fstype,
            options,
            statusfile_prefix: p.str("statusfile_prefix")?.unwrap_or(".Filesystem_status/").to_string(),
            run_fsck: p.str("run_fsck")?.unwrap_or("auto").to_string(),
            fast_stop: p.flag("fast_stop")?,
            force_clones: p.flag("force_clones")?,
            force_unmount,
            term_signals: signals(p, "term_signals")?,
            kill_signals: signals(p, "kill_signals")?,
            signal_delay: p.duration("signal_delay")?.unwrap_or(Duration::from_secs(1)),
            create_directory: p.flag("create_directory")?,
            device_text,
        })
    }

    pub fn read_only(&self) -> bool {
        self.options.split(',').any(|o| o == "ro")
    }

    /// Quota options that ask the kernel to account and enforce quotas.
    pub fn quota_options(&self) -> Vec<&str> {
        self.options
            .split(',')
            .filter(|o| matches!(*o, "usrquota" | "grpquota" | "quota" | "prjquota") || o.starts_with("usrjquota="))
            .collect()
    }
}

fn classify(text: &str, fstype: &str, is_bind: bool) -> Result<Device, ParamError> {
    for (prefix, kind) in
        [("LABEL=", "LABEL"), ("UUID=", "UUID"), ("PARTLABEL=", "PARTLABEL"), ("PARTUUID=", "PARTUUID")]
    {
        if let Some(v) = text.strip_prefix(prefix) {
            return Ok(Device::Tag { kind, value: v.to_string() });
        }
    }
    if let Some(v) = text.strip_prefix("-L ") {
        return Ok(Device::Tag { kind: "LABEL", value: v.trim().to_string() });
    }
    if let Some(v) = text.strip_prefix("-U ") {
        return Ok(Device::Tag { kind: "UUID", value: v.trim().to_string() });
    }
    if is_bind {
        if !text.starts_with('/') {
            return Err(malformed("device", text, "a bind mount's source must be an absolute directory"));
        }
        return Ok(Device::Bind(text.to_string()));
    }
    if matches!(fstype, "nfs" | "nfs4") {
        let ok = text.split_once(":/").is_some_and(|(host, _)| !host.is_empty());
        if !ok {
            return Err(malformed("device", text, "an NFS export is host:/path"));
        }
        return Ok(Device::Network(text.to_string()));
    }
    if matches!(fstype, "cifs" | "smb3" | "smbfs") {
        if !text.starts_with("//") || text.len() < 4 {
            return Err(malformed("device", text, "a CIFS share is //server/share"));
        }
        return Ok(Device::Network(text.to_string()));
    }
    if kinds::is_network(fstype) {
        return Ok(Device::Network(text.to_string()));
    }
    if kinds::has_block_device(fstype) {
        if !text.starts_with('/') {
            return Err(malformed("device", text, "a block device path, LABEL= or UUID="));
        }
        return Ok(Device::Block(text.to_string()));
    }
    Ok(Device::Virtual(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_forms() {
        assert_eq!(classify("/dev/loop0", "ext4", false), Ok(Device::Block("/dev/loop0".into())));
        assert_eq!(classify("LABEL=mail1", "xfs", false), Ok(Device::Tag { kind: "LABEL", value: "mail1".into() }));
        assert_eq!(classify("-U abcd", "ext4", false), Ok(Device::Tag { kind: "UUID", value: "abcd".into() }));
        assert_eq!(classify("filer:/vol/web", "nfs4", false), Ok(Device::Network("filer:/vol/web".into())));
        assert!(classify("filer", "nfs", false).is_err());
        assert_eq!(classify("//nas/share", "cifs", false), Ok(Device::Network("//nas/share".into())));
        assert_eq!(classify("/srv/data", "none", true), Ok(Device::Bind("/srv/data".into())));
        assert!(classify("data", "none", true).is_err());
        assert_eq!(classify("scratch", "tmpfs", false), Ok(Device::Virtual("scratch".into())));
        assert!(classify("sdb1", "ext4", false).is_err());
    }
}
