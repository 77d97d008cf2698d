//! TLS material: the interception CA issuing per-host leaf certificates (cached), and the client
//! configuration for the upstream leg (public roots plus configured extra roots).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use bottle_egress_config::TlsConfig;

/// Leaf certificates kept at most; the cache is emptied when full.
const LEAF_CACHE_MAX: usize = 4096;

/// What went wrong with TLS material.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {what} `{path}`: {source}")]
    Read {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A file's content is not what it should be.
    #[error("{what} `{path}`: {message}")]
    Parse {
        /// Which file.
        what: &'static str,
        /// Its path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Issuing a certificate failed.
    #[error("cannot issue a certificate for `{host}`: {message}")]
    Issue {
        /// For which host.
        host: String,
        /// Why.
        message: String,
    },
    /// rustls refused a configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The crypto provider everything here uses (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The interception CA, its leaf cache and the upstream client configuration.
pub struct TlsState {
    issuer: Issuer<'static, KeyPair>,
    leaf_key: KeyPair,
    provider: Arc<CryptoProvider>,
    leaves: Mutex<HashMap<String, Arc<ServerConfig>>>,
    client: Arc<ClientConfig>,
}

impl std::fmt::Debug for TlsState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsState").finish_non_exhaustive()
    }
}

impl TlsState {
    /// Reads the CA and the extra upstream roots named by `config`.
    pub fn load(config: &TlsConfig) -> Result<TlsState, TlsError> {
        let ca_pem = read(&config.ca_cert, "CA certificate")?;
        let key_pem = read(&config.ca_key, "CA key")?;
        let parse = |what: &'static str, path: &str, message: String| TlsError::Parse {
            what,
            path: path.to_string(),
            message,
        };
        let ca_key = KeyPair::from_pem(&key_pem)
            .map_err(|e| parse("CA key", &config.ca_key, e.to_string()))?;
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key)
            .map_err(|e| parse("CA certificate", &config.ca_cert, e.to_string()))?;

        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for path in &config.upstream_roots {
            let pem = read(path, "upstream root")?;
            let mut n = 0;
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| parse("upstream root", path, e.to_string()))?;
                roots
                    .add(cert)
                    .map_err(|e| parse("upstream root", path, e.to_string()))?;
                n += 1;
            }
            if n == 0 {
                return Err(parse(
                    "upstream root",
                    path,
                    "no certificate in the file".into(),
                ));
            }
        }
        let provider = provider();
        let mut client = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"http/1.1".to_vec()];

        let leaf_key = KeyPair::generate().map_err(|e| TlsError::Issue {
            host: "*".into(),
            message: e.to_string(),
        })?;
        Ok(TlsState {
            issuer,
            leaf_key,
            provider,
            leaves: Mutex::new(HashMap::new()),
            client: Arc::new(client),
        })
    }

    /// The configuration for the upstream leg.
    pub fn client_config(&self) -> Arc<ClientConfig> {
        self.client.clone()
    }

    /// A server configuration presenting a leaf certificate for `host` (issued once, then cached).
    pub fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, TlsError> {
        if let Some(config) = self
            .leaves
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(host)
        {
            return Ok(config.clone());
        }
        let config = Arc::new(self.issue(host)?);
        let mut leaves = self.leaves.lock().unwrap_or_else(|e| e.into_inner());
        if leaves.len() >= LEAF_CACHE_MAX {
            leaves.clear();
        }
        leaves.insert(host.to_string(), config.clone());
        Ok(config)
    }

    fn issue(&self, host: &str) -> Result<ServerConfig, TlsError> {
        let err = |message: String| TlsError::Issue {
            host: host.to_string(),
            message,
        };
        let mut params =
            CertificateParams::new(vec![host.to_string()]).map_err(|e| err(e.to_string()))?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, host);
        params.distinguished_name = dn;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(90);
        let mut serial = [0u8; 16];
        self.provider
            .secure_random
            .fill(&mut serial)
            .map_err(|_| err("no randomness".into()))?;
        serial[0] &= 0x7f;
        params.serial_number = Some(SerialNumber::from_slice(&serial));
        let cert = params
            .signed_by(&self.leaf_key, &self.issuer)
            .map_err(|e| err(e.to_string()))?;
        let key = PrivateKeyDer::try_from(self.leaf_key.serialize_der())
            .map_err(|e| err(e.to_string()))?;
        let mut config = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

fn read(path: &str, what: &'static str) -> Result<String, TlsError> {
    std::fs::read_to_string(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_string(),
        source,
    })
}
