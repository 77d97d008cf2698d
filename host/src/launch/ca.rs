//! The bottle's certificate authorities, minted by the host with `rcgen` for every launch.
//!
//! Two ECDSA P-256 CAs: `agent` (the egress proxy intercepts the agent's TLS with it; the agent
//! trusts it) and `firewall` (pipelock's interception CA, trusted by the egress proxy on its upstream
//! leg). Private keys exist in memory, in the 0600 files of the 0700 stage directory while the bottle
//! runs, and in the one sidecar that signs with each; never in the agent, never in a plugin.

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use sha2::{Digest, Sha256};

/// A minted CA.
pub struct MintedCa {
    /// `agent` or `firewall`.
    pub name: String,
    /// Certificate, PEM.
    pub cert_pem: String,
    /// Private key, PEM (PKCS#8). Never logged.
    pub key_pem: String,
    /// SHA-256 of the certificate's DER, lowercase hex.
    pub sha256: String,
}

impl std::fmt::Debug for MintedCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MintedCa")
            .field("name", &self.name)
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

/// Mint a CA named `name` for the bottle `identity`.
pub fn mint(name: &str, identity: &str) -> Result<MintedCa, rcgen::Error> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
        .distinguished_name
        .push(DnType::OrganizationName, "bottle");
    params.distinguished_name.push(
        DnType::CommonName,
        format!("bottle {name} CA for {identity}"),
    );
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(30);
    let cert = params.self_signed(&key)?;
    Ok(MintedCa {
        name: name.to_owned(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        sha256: hex::encode(Sha256::digest(cert.der())),
    })
}

/// `AB:CD:…` form of a hex fingerprint, as browsers and openssl print it.
pub fn colon_fingerprint(hex: &str) -> String {
    hex.as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).to_uppercase())
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mints_a_p256_ca_with_a_fingerprint() {
        let ca = mint("agent", "claude").unwrap();
        assert!(ca.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(ca.key_pem.contains("PRIVATE KEY"));
        assert_eq!(ca.sha256.len(), 64);
        assert!(
            !format!("{ca:?}").contains("PRIVATE"),
            "Debug must not show the key"
        );
        let other = mint("agent", "claude").unwrap();
        assert_ne!(ca.sha256, other.sha256, "every launch mints a fresh CA");
        assert_eq!(colon_fingerprint("abcd01"), "AB:CD:01");
    }
}
