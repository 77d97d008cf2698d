//! Helpers for a plugin's native tests (feature `testing`, as a dev-dependency).

use std::path::Path;

/// Compare `actual` with the file `dir/name`; with `BOTTLE_BLESS=1` in the environment, rewrite the
/// file instead. [`assert_golden!`](crate::assert_golden) passes the crate's `tests/golden`.
pub fn assert_golden_in(dir: &Path, name: &str, actual: &str) {
    let path = dir.join(name);
    if std::env::var_os("BOTTLE_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with BOTTLE_BLESS=1 to create it",
            path.display()
        )
    });
    assert!(
        actual == expected,
        "{} differs (rerun with BOTTLE_BLESS=1 if intended):\n--- expected\n{expected}\n--- actual\n{actual}",
        path.display()
    );
}

/// `assert_golden!(name, actual)`: compare `actual` with the calling crate's
/// `tests/golden/<name>` ([`testing::assert_golden_in`](crate::testing::assert_golden_in)).
#[macro_export]
macro_rules! assert_golden {
    ($name:expr, $actual:expr $(,)?) => {
        $crate::testing::assert_golden_in(
            &::std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden"),
            $name,
            $actual,
        )
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_golden_file_matches_and_a_difference_fails() {
        let dir = std::env::temp_dir().join(format!("sdk-golden-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("g.txt"), "same\n").unwrap();
        super::assert_golden_in(&dir, "g.txt", "same\n");
        let differs =
            std::panic::catch_unwind(|| super::assert_golden_in(&dir, "g.txt", "other\n"));
        let missing = std::panic::catch_unwind(|| super::assert_golden_in(&dir, "none.txt", ""));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(differs.is_err() && missing.is_err());
    }
}
