//! Does the engine answer public names from inside an internal network?
//!
//! A bottle's internal network has no route out, but Docker's embedded resolver (127.0.0.11) runs
//! in the engine, which has one. Engines before 26 forward lookups from internal networks to the
//! host's resolvers, and a lookup of `<secret>.attacker.example` is then a channel out of the
//! bottle for any container on that network. The agent is configured with no usable upstream
//! resolver either way; the sidecars (third-party ones included) rely on the engine.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig};

use crate::docker::{Engine, labels};

/// A name the host's own resolvers answer (Debian's mirror: apt needs it in `docker build`).
const PUBLIC_NAME: &str = "deb.debian.org";

/// What one lookup from a throwaway container saw.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The name resolved (the probe's output).
    Resolved(String),
    /// It did not.
    Failed,
}

/// Both lookups: the control on an ordinary network, the probe on an internal one.
#[derive(Debug)]
pub struct Forwarding {
    pub control: Lookup,
    pub internal: Lookup,
}

/// Look `PUBLIC_NAME` up from an ordinary network and from an internal one, each in a throwaway
/// labelled container; everything made is removed again, whatever happens.
pub async fn probe(engine: &Engine, image: &str) -> anyhow::Result<Forwarding> {
    let stem = format!("bottle-doctor-dns-{}", std::process::id());
    let result = async {
        let control = lookup_on(engine, image, &format!("{stem}-open"), false).await?;
        let internal = lookup_on(engine, image, &format!("{stem}-internal"), true).await?;
        anyhow::Ok(Forwarding { control, internal })
    }
    .await;
    for suffix in ["open", "internal"] {
        let name = format!("{stem}-{suffix}");
        let _ = engine.remove_container(&name).await;
        let _ = engine.remove_network(&name).await;
    }
    result
}

async fn lookup_on(
    engine: &Engine,
    image: &str,
    name: &str,
    internal: bool,
) -> anyhow::Result<Lookup> {
    let labels = doctor_labels();
    engine.create_network(name, internal, &labels).await?;
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        cmd: Some(vec!["sleep".into(), "60".into()]),
        labels: Some(labels),
        host_config: Some(HostConfig {
            network_mode: Some(name.to_owned()),
            // One quick try: an engine that does not forward makes the resolver time out.
            dns_options: Some(vec!["timeout:1".into(), "attempts:1".into()]),
            init: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    };
    engine.create_container(name, body, name, &[]).await?;
    engine.start(name).await?;
    let cmd = ["getent", "hosts", PUBLIC_NAME].map(str::to_owned);
    let out = engine.exec(name, &cmd, None).await?;
    Ok(if out.code == 0 && !out.stdout.trim().is_empty() {
        Lookup::Resolved(out.stdout.trim().to_owned())
    } else {
        Lookup::Failed
    })
}

/// The labels of the doctor's throwaway objects (found by `bottle cleanup` if doctor is killed).
pub fn doctor_labels() -> HashMap<String, String> {
    let mut map = HashMap::from([
        (labels::MANAGED.to_owned(), "true".to_owned()),
        (labels::ROLE.to_owned(), "doctor".to_owned()),
    ]);
    if let Ok(test) = std::env::var("BOTTLE_TEST_LABEL") {
        map.insert(labels::TEST.into(), test);
    }
    map
}

/// The verdict for the report: `Ok(detail)`, `Err((detail, fix))`, or `None` when the control
/// shows the check cannot tell (the host resolves nothing itself).
pub fn verdict(seen: &Forwarding) -> Option<Result<String, (String, String)>> {
    let Lookup::Resolved(address) = &seen.control else {
        return None;
    };
    Some(match &seen.internal {
        Lookup::Failed => Ok(format!(
            "{PUBLIC_NAME} resolves on an ordinary network ({address}) and not on an internal one"
        )),
        Lookup::Resolved(leaked) => Err((
            format!("the engine answered {PUBLIC_NAME} ({leaked}) inside an internal network"),
            "use Docker Engine 26 or newer, which does not forward DNS from internal networks; \
             until then a sidecar can send data out in DNS lookups"
                .to_owned(),
        )),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(control: Lookup, internal: Lookup) -> Forwarding {
        Forwarding { control, internal }
    }

    #[test]
    fn a_forwarding_engine_fails_and_a_silent_one_passes() {
        let name = || Lookup::Resolved("192.0.2.1 deb.debian.org".into());
        assert!(verdict(&seen(name(), Lookup::Failed)).unwrap().is_ok());
        let (detail, fix) = verdict(&seen(name(), name())).unwrap().unwrap_err();
        assert!(detail.contains("inside an internal network"), "{detail}");
        assert!(fix.contains("Engine 26"), "{fix}");
    }

    #[test]
    fn without_a_working_control_there_is_no_verdict() {
        assert!(verdict(&seen(Lookup::Failed, Lookup::Failed)).is_none());
    }
}
