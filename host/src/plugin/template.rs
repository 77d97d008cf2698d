//! `bottle plugins new <name>`: a building, tested plugin crate from `templates/sidecar-plugin/`
//! (embedded in the binary).

use std::path::Path;

use anyhow::Context as _;

/// The template's files: path in the new crate, contents with `{{…}}` placeholders.
const FILES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../../templates/sidecar-plugin/Cargo.toml.tmpl"),
    ),
    (
        "src/lib.rs",
        include_str!("../../../templates/sidecar-plugin/src/lib.rs.tmpl"),
    ),
    (
        "example.yaml",
        include_str!("../../../templates/sidecar-plugin/example.yaml.tmpl"),
    ),
    (
        "README.md",
        include_str!("../../../templates/sidecar-plugin/README.md.tmpl"),
    ),
];

/// The SDK of the checkout this binary was built from.
pub fn default_sdk() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/plugin-sdk")
}

/// Write the template for plugin `name` into `dir` (which must not exist or be empty).
pub fn write(name: &str, dir: &Path, sdk: Option<&Path>) -> anyhow::Result<()> {
    anyhow::ensure!(
        crate::names::is_slug(name),
        "`{name}` is not a plugin name: use [a-z][a-z0-9-]*"
    );
    if dir.exists() && dir.read_dir()?.next().is_some() {
        anyhow::bail!(
            "{} exists and is not empty; choose another --dir",
            dir.display()
        );
    }
    let sdk = sdk.map(Path::to_path_buf).unwrap_or_else(default_sdk);
    let sdk = sdk.canonicalize().with_context(|| {
        format!(
            "the plugin SDK is not at {}; pass --sdk <path to crates/plugin-sdk>",
            sdk.display()
        )
    })?;
    let krate = format!("bottle-plugin-{name}");
    for (path, text) in FILES {
        let text = text
            .replace("{{name}}", name)
            .replace("{{section}}", &name.replace('-', "_"))
            .replace("{{crate_ident}}", &krate.replace('-', "_"))
            .replace("{{crate}}", &krate)
            .replace("{{sdk}}", &sdk.display().to_string());
        let target = dir.join(path);
        std::fs::create_dir_all(target.parent().expect("has a parent"))?;
        std::fs::write(&target, text).with_context(|| format!("writing {}", target.display()))?;
    }
    Ok(())
}
