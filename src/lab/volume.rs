//! The lab's shared disks: a filesystem image on a loop device for every
//! `LABEL=` volume of the description (this machine has no SAN; every node
//! sees the same loop device, as nodes see a LUN).

use super::error::LabError;
use super::node::run;
use super::state::{self, Volume};
use std::path::Path;

/// A volume `label` of `fstype`; with `seed`, an ext filesystem is created
/// holding that directory's files (mke2fs -d).
pub fn create(label: &str, fstype: &str, seed: Option<&Path>) -> Result<Volume, LabError> {
    let dir = state::lab_dir().join("volumes");
    std::fs::create_dir_all(&dir).map_err(LabError::io("create", &dir))?;
    let image = dir.join(format!("{label}.img"));
    let f = std::fs::File::create(&image).map_err(LabError::io("create", &image))?;
    // xfs wants at least 300 MB; the image is sparse either way.
    f.set_len(if fstype == "xfs" { 320 << 20 } else { 64 << 20 }).map_err(LabError::io("size", &image))?;
    let img = image.display().to_string();
    let mkfs = format!("mkfs.{fstype}");
    match fstype {
        "xfs" => run(&[&mkfs, "-q", "-L", label, &img])?,
        _ => match seed {
            Some(dir) => run(&[&mkfs, "-q", "-F", "-L", label, "-d", &dir.display().to_string(), &img])?,
            None => run(&[&mkfs, "-q", "-F", "-L", label, &img])?,
        },
    };
    let device = run(&["losetup", "--find", "--show", &img])?.trim().to_string();
    Ok(Volume { label: label.to_string(), image, device })
}

/// Detach the loop device of an image (whichever it is) and delete it.
pub fn remove(image: &Path) {
    let img = image.display().to_string();
    if let Ok(out) = run(&["losetup", "-j", &img]) {
        for dev in out.lines().filter_map(|l| l.split(':').next()) {
            let _ = run(&["losetup", "-d", dev]);
        }
    }
    let _ = std::fs::remove_file(image);
}
