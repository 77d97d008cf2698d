//! How many bytes a plugin call returned: the payload of every string, byte list and number in
//! the value the host lifted out of the sandbox. A call returning more than
//! [`RuntimeLimits::returned_bytes`](super::RuntimeLimits) is refused naming the plugin, so one
//! plugin cannot make the host hold and validate an unbounded plan.

use super::bindings::bottle::plugin::types::{Diagnostic, Property};
use super::bindings::exports::bottle::plugin::sidecar as wit;
use super::bindings::policy::bottle::plugin::types::Property as PolicyProperty;
use super::bindings::policy::exports::bottle::plugin::policy::Violation;

/// The bytes a value occupies on the way out of a plugin (strings and lists by their contents,
/// scalars by their width, every list entry at least one byte so empty entries still count).
pub trait ReturnedBytes {
    /// The size in bytes.
    fn returned_bytes(&self) -> usize;
}

impl ReturnedBytes for String {
    fn returned_bytes(&self) -> usize {
        self.len().max(1)
    }
}

impl<T: ReturnedBytes> ReturnedBytes for Vec<T> {
    fn returned_bytes(&self) -> usize {
        self.iter()
            .map(ReturnedBytes::returned_bytes)
            .sum::<usize>()
            + 4
    }
}

impl<T: ReturnedBytes> ReturnedBytes for Option<T> {
    fn returned_bytes(&self) -> usize {
        1 + self.as_ref().map_or(0, ReturnedBytes::returned_bytes)
    }
}

impl<T: ReturnedBytes, E: ReturnedBytes> ReturnedBytes for Result<T, E> {
    fn returned_bytes(&self) -> usize {
        1 + match self {
            Ok(v) => v.returned_bytes(),
            Err(e) => e.returned_bytes(),
        }
    }
}

impl<A: ReturnedBytes, B: ReturnedBytes> ReturnedBytes for (A, B) {
    fn returned_bytes(&self) -> usize {
        self.0.returned_bytes() + self.1.returned_bytes()
    }
}

/// Sum the listed fields' sizes plus a fixed size for the scalar rest.
macro_rules! record {
    ($ty:ty, scalars: $scalars:expr, $($field:ident),* $(,)?) => {
        impl ReturnedBytes for $ty {
            fn returned_bytes(&self) -> usize {
                [$scalars, $(self.$field.returned_bytes()),*].iter().sum()
            }
        }
    };
}

record!(Property, scalars: 0, key, value);
record!(PolicyProperty, scalars: 0, key, value);
record!(Diagnostic, scalars: 1, path, message, hint);
record!(Violation, scalars: 0, rule, message, subject, properties);
record!(wit::RoleOffer, scalars: 4, role);
record!(wit::PluginInfo, scalars: 0, name, version, summary, sections, roles, properties);
record!(wit::HostFile, scalars: 4, host_path, path);
record!(wit::Mount, scalars: 1, source, target);
record!(wit::CaInstall, scalars: 0, ca, cert_path, key_path);
record!(wit::HostEntry, scalars: 0, host, ip);
record!(wit::HealthCheck, scalars: 12, probe);
record!(
    wit::SidecarSpec,
    scalars: 3,
    name,
    image,
    command,
    networks,
    aliases,
    health,
    env,
    files,
    host_files,
    mounts,
    cas,
    extra_hosts,
    roles,
    after,
    properties,
);
record!(wit::ProvisionStep, scalars: 0, name, command);
record!(wit::AgentContribution, scalars: 0, env, files, no_proxy, provision, properties);
record!(wit::EgressNeed, scalars: 2, host, reason);
record!(wit::Contribution, scalars: 0, sidecars, agent, egress, properties);
record!(wit::EnvVar, scalars: 0, name, value);
record!(wit::PlacedFile, scalars: 0, target, file);
record!(wit::PlacedEnv, scalars: 0, target, var);
record!(wit::Finalization, scalars: 0, files, env, properties);

impl ReturnedBytes for wit::File {
    fn returned_bytes(&self) -> usize {
        4 + self.path.returned_bytes() + self.contents.len()
    }
}

impl ReturnedBytes for wit::Network {
    fn returned_bytes(&self) -> usize {
        1
    }
}

impl ReturnedBytes for wit::EnvValue {
    fn returned_bytes(&self) -> usize {
        1 + match self {
            wit::EnvValue::Literal(s) | wit::EnvValue::Secret(s) => s.returned_bytes(),
        }
    }
}

impl ReturnedBytes for wit::Image {
    fn returned_bytes(&self) -> usize {
        1 + match self {
            wit::Image::Reference(s) | wit::Image::Context(s) => s.returned_bytes(),
        }
    }
}

impl ReturnedBytes for wit::Probe {
    fn returned_bytes(&self) -> usize {
        1 + match self {
            wit::Probe::Tcp(_) => 2,
            wit::Probe::Http(http) => 2 + http.path.returned_bytes(),
            wit::Probe::Exec(command) => command.returned_bytes(),
        }
    }
}

impl ReturnedBytes for wit::OrderRef {
    fn returned_bytes(&self) -> usize {
        1 + match self {
            wit::OrderRef::Sidecar(s) | wit::OrderRef::Role(s) => s.returned_bytes(),
        }
    }
}

impl ReturnedBytes for wit::MountSource {
    fn returned_bytes(&self) -> usize {
        let wit::MountSource::State(s) = self;
        1 + s.returned_bytes()
    }
}

impl ReturnedBytes for wit::Target {
    fn returned_bytes(&self) -> usize {
        1 + match self {
            wit::Target::Agent => 0,
            wit::Target::Sidecar(s) => s.returned_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_contents_and_strings_count() {
        let file = wit::File {
            path: "/x".into(),
            contents: vec![0; 1000],
            mode: 0o644,
        };
        assert!(file.returned_bytes() >= 1002);
        let many_empty: Vec<String> = vec![String::new(); 100];
        assert!(many_empty.returned_bytes() >= 100);
    }
}
