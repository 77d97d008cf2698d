//! Agent and bottle manifests: Markdown files with YAML frontmatter between `---` lines.
//!
//! An *agent* manifest (`agents/<name>.md`) names the bottle the agent runs in, the skills it gets
//! and its command; its Markdown body is the system prompt. A *bottle* manifest
//! (`bottles/<name>.md`) describes the sandbox: environment, git upstreams, egress, sidecars; its
//! body is free notes.
//!
//! [`Catalog::discover`] finds manifests on disk (bottles only under the bottle home, agents under
//! the home and the project) and parses them on demand. Every error names the file, the line when
//! one can be found, what is wrong and how to fix it.

mod agent;
mod bottle;
mod catalog;
pub mod defaults;
mod document;
mod egress;
mod env;
mod error;
mod frontmatter;
mod git;
pub mod grants;
mod invalid;
mod limits;
mod locate;
pub mod migrate;
mod names;
mod paths;
mod sections;
mod ssh;
mod strict;
mod suggest;

pub use agent::{Agent, AgentCommand};
pub use bottle::{Bottle, Runtime};
pub use catalog::{Catalog, Entry, default_home};
pub use document::{Origin, Source};
pub use egress::{Auth, AuthScheme, DlpAction, Egress, EgressProxy, Firewall, Route};
pub use env::EnvValue;
pub use error::{ManifestError, Problem, Warning};
pub use git::GitRepo;
pub use limits::Limits;
pub use names::{MANIFEST_NAME_RULE, is_manifest_name};
pub use ssh::SshUrl;
