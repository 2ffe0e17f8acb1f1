//! The system's root certificates, read once per process.
//!
//! Each TLS client that trusts the system's roots would otherwise read them itself: every
//! file of the certificate bundle and directory (`SSL_CERT_FILE`, `SSL_CERT_DIR`, or the
//! platform's store), tens of milliseconds before its first request. Here they are read once,
//! the first time any client needs them; the registry client trusts them, and
//! [`system_root_certificates_pem`] hands the same ones to another client (the deploy
//! pipeline's AWS SDK client).

use std::sync::OnceLock;

use base64::Engine as _;
use rustls::pki_types::CertificateDer;

struct Roots {
    der: Vec<CertificateDer<'static>>,
    pem: Vec<u8>,
}

fn roots() -> &'static Roots {
    static ROOTS: OnceLock<Roots> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::debug!("a system root certificate could not be read: {error}");
        }
        let der = usable(found.certs);
        tracing::debug!("{} root certificates read from the system", der.len());
        let pem = der.iter().flat_map(|cert| pem_of(cert)).collect();
        Roots { der, pem }
    })
}

/// The certificates that parse as trust anchors: one that does not is left out (as the
/// platform verifier does), so that no client refuses to start because of it.
fn usable(certs: Vec<CertificateDer<'static>>) -> Vec<CertificateDer<'static>> {
    let mut store = rustls::RootCertStore::empty();
    certs
        .into_iter()
        .filter(|cert| store.add(cert.clone()).is_ok())
        .collect()
}

/// One certificate as a PEM block.
fn pem_of(der: &[u8]) -> Vec<u8> {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = b"-----BEGIN CERTIFICATE-----\n".to_vec();
    for line in body.as_bytes().chunks(64) {
        pem.extend_from_slice(line);
        pem.push(b'\n');
    }
    pem.extend_from_slice(b"-----END CERTIFICATE-----\n");
    pem
}

/// The system's root certificates (DER), read on first use and kept for the process.
pub(crate) fn system_root_certificates() -> &'static [CertificateDer<'static>] {
    &roots().der
}

/// The same root certificates as one PEM bundle, for another TLS client of the process to
/// trust (the AWS SDK's `TrustStore::with_pem_certificate`), so that it reads none itself.
/// Read on first use (of either form) and kept for the process.
pub fn system_root_certificates_pem() -> &'static [u8] {
    &roots().pem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_becomes_one_pem_block_of_64_column_lines() {
        let der = vec![7u8; 100];
        let pem = String::from_utf8(pem_of(&der)).unwrap();
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines.first(), Some(&"-----BEGIN CERTIFICATE-----"));
        assert_eq!(lines.last(), Some(&"-----END CERTIFICATE-----"));
        assert!(lines[1..lines.len() - 1].iter().all(|l| l.len() <= 64));
        let body: String = lines[1..lines.len() - 1].concat();
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap(),
            der
        );
    }

    #[test]
    fn a_certificate_that_is_no_trust_anchor_is_left_out() {
        let garbage = CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
        assert!(usable(vec![garbage]).is_empty());
    }
}
