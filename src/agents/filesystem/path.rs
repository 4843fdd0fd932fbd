//! Mount point paths as the kernel's mount table spells them (symlinks in
//! the configured directory resolved, even before the directory exists).

use std::io;
use std::path::{Path, PathBuf};

/// `path` with its longest existing ancestor canonicalized and the missing
/// rest appended as given (realpath -m for paths without `.`/`..`): the
/// mount table will show the directory start creates under that name.
pub fn canonical(path: &Path) -> io::Result<PathBuf> {
    let mut missing = Vec::new();
    let mut at = path;
    loop {
        match std::fs::canonicalize(at) {
            Ok(real) => return Ok(missing.iter().rev().fold(real, |p, name| p.join(name))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let (Some(parent), Some(name)) = (at.parent(), at.file_name()) else { return Err(e) };
                missing.push(name.to_os_string());
                at = parent;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlinked_parent_is_resolved_for_existing_and_missing_directories() {
        let base = std::env::temp_dir().join(format!("haven-canonical-{}", std::process::id()));
        let real = base.join("real");
        std::fs::create_dir_all(real.join("there")).unwrap();
        std::os::unix::fs::symlink(&real, base.join("link")).unwrap();
        let real = std::fs::canonicalize(&real).unwrap();
        assert_eq!(canonical(&base.join("link/there")).unwrap(), real.join("there"));
        assert_eq!(canonical(&base.join("link/not/yet")).unwrap(), real.join("not/yet"));
        assert_eq!(canonical(&base.join("link/")).unwrap(), real);
        assert_eq!(canonical(&real.join("plain")).unwrap(), real.join("plain"));
        std::fs::remove_dir_all(&base).unwrap();
    }
}
