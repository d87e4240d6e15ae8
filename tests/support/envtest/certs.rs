//! The certificates and keys a server needs, generated fresh per server:
//! a CA, a serving certificate for 127.0.0.1 and localhost signed by it,
//! and the service-account signing key pair.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// Where the generated files were written.
pub struct Certs {
    pub ca_pem: String,
    pub ca: PathBuf,
    pub serving_cert: PathBuf,
    pub serving_key: PathBuf,
    pub sa_public: PathBuf,
    pub sa_private: PathBuf,
}

pub fn generate(dir: &Path) -> Result<Certs, String> {
    let fail = |what: &str, e: rcgen::Error| format!("cannot generate the {what}: {e}");
    let ca_key = KeyPair::generate().map_err(|e| fail("CA key", e))?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(|e| fail("CA", e))?;
    ca_params.distinguished_name.push(DnType::CommonName, "hcpc envtest CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(|e| fail("CA", e))?;
    let issuer = Issuer::new(ca_params, ca_key);

    let serving_key = KeyPair::generate().map_err(|e| fail("serving key", e))?;
    let mut serving = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .map_err(|e| fail("serving certificate", e))?;
    serving.distinguished_name.push(DnType::CommonName, "kube-apiserver");
    let serving_cert = serving.signed_by(&serving_key, &issuer).map_err(|e| fail("serving certificate", e))?;

    // The API server signs service-account tokens with ECDSA keys as well as RSA ones.
    let sa_key = KeyPair::generate().map_err(|e| fail("service-account key", e))?;

    let write = |name: &str, text: String| -> Result<PathBuf, String> {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path)
    };
    Ok(Certs {
        ca_pem: ca_cert.pem(),
        ca: write("ca.crt", ca_cert.pem())?,
        serving_cert: write("apiserver.crt", serving_cert.pem())?,
        serving_key: write("apiserver.key", serving_key.serialize_pem())?,
        sa_public: write("sa.pub", sa_key.public_key_pem())?,
        sa_private: write("sa.key", sa_key.serialize_pem())?,
    })
}
