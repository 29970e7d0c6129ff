//! Webhook signatures, verified over the raw body bytes as received (re-serialised JSON would
//! not verify): `x-ghl-signature`, Ed25519, and the older `x-wh-signature`, RSA-SHA256 with
//! PKCS#1 v1.5 padding; both base64. A request passes when a signature it carries verifies
//! with the key of its scheme; it fails when none does (or it carries none).
//!
//! Keys are PEM SubjectPublicKeyInfo ("-----BEGIN PUBLIC KEY-----"), as GHL publishes its RSA
//! key ([`GHL_RSA_PUBLIC_KEY`], the default for the old scheme) and as `openssl pkey -pubout`
//! writes. The DER inside is read by the few lines below: ring verifies, but takes raw keys.

use base64::Engine;
use ring::signature::{UnparsedPublicKey, ED25519, RSA_PKCS1_2048_8192_SHA256};

/// GHL's public key for `x-wh-signature`, from its webhook authentication guide
/// (highlevel-api-docs, `docs/oauth/WebhookAuthentication.md`).
pub const GHL_RSA_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MIICIjANBgkqhkiG9w0BAQEFAAOCAg8AMIICCgKCAgEAokvo/r9tVgcfZ5DysOSC
Frm602qYV0MaAiNnX9O8KxMbiyRKWeL9JpCpVpt4XHIcBOK4u3cLSqJGOLaPuXw6
dO0t6Q/ZVdAV5Phz+ZtzPL16iCGeK9po6D6JHBpbi989mmzMryUnQJezlYJ3DVfB
csedpinheNnyYeFXolrJvcsjDtfAeRx5ByHQmTnSdFUzuAnC9/GepgLT9SM4nCpv
uxmZMxrJt5Rw+VUaQ9B8JSvbMPpez4peKaJPZHBbU3OdeCVx5klVXXZQGNHOs8gF
3kvoV5rTnXV0IknLBXlcKKAQLZcY/Q9rG6Ifi9c+5vqlvHPCUJFT5XUGG5RKgOKU
J062fRtN+rLYZUV+BjafxQauvC8wSWeYja63VSUruvmNj8xkx2zE/Juc+yjLjTXp
IocmaiFeAO6fUtNjDeFVkhf5LNb59vECyrHD2SQIrhgXpO4Q3dVNA5rw576PwTzN
h/AMfHKIjE4xQA1SZuYJmNnmVZLIZBlQAF9Ntd03rfadZ+yDiOXCCs9FkHibELhC
HULgCsnuDJHcrGNd5/Ddm5hxGQ0ASitgHeMZ0kcIOwKDOzOU53lDza6/Y09T7sYJ
PQe7z0cvj7aE4B+Ax1ZoZGPzpJlZtGXCsu9aTEGEnKzmsFqwcSsnw3JB31IGKAyk
T1hhTiaCeIY/OwwwNUY2yvcCAwEAAQ==
-----END PUBLIC KEY-----";

pub const ED25519_HEADER: &str = "x-ghl-signature";
pub const RSA_HEADER: &str = "x-wh-signature";

/// A public key of one of the two schemes, as ring takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PublicKey {
    /// The 32 key bytes.
    Ed25519(Vec<u8>),
    /// The PKCS#1 `RSAPublicKey` DER.
    Rsa(Vec<u8>),
}

impl PublicKey {
    /// A PEM SubjectPublicKeyInfo. The error says what is wrong, never the key.
    pub fn from_pem(pem: &str) -> Result<PublicKey, String> {
        let body: String = pem
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("-----"))
            .collect();
        if !pem.contains("-----BEGIN PUBLIC KEY-----") {
            return Err("not a PEM public key: expected a \"-----BEGIN PUBLIC KEY-----\" block (SubjectPublicKeyInfo, as `openssl pkey -pubout` writes)".into());
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|e| format!("the PEM block is not valid base64: {e}"))?;
        spki(&der)
    }

    fn name(&self) -> &'static str {
        match self {
            PublicKey::Ed25519(_) => "Ed25519",
            PublicKey::Rsa(_) => "RSA",
        }
    }
}

/// OID 1.3.101.112 (id-Ed25519) and 1.2.840.113549.1.1.1 (rsaEncryption), DER-encoded.
const OID_ED25519: &[u8] = &[0x06, 0x03, 0x2b, 0x65, 0x70];
const OID_RSA: &[u8] = &[
    0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
];

/// `SEQUENCE { SEQUENCE { algorithm OID, params }, BIT STRING key }`.
fn spki(der: &[u8]) -> Result<PublicKey, String> {
    let bad = |what: &str| format!("not a SubjectPublicKeyInfo: {what}");
    let (outer, _) = tlv(der, 0x30).ok_or_else(|| bad("no outer SEQUENCE"))?;
    let (alg, rest) = tlv(outer, 0x30).ok_or_else(|| bad("no algorithm SEQUENCE"))?;
    let (bits, _) = tlv(rest, 0x03).ok_or_else(|| bad("no key BIT STRING"))?;
    let key = match bits.split_first() {
        Some((0, key)) => key.to_vec(),
        _ => return Err(bad("a BIT STRING with unused bits")),
    };
    if alg.starts_with(OID_ED25519) {
        if key.len() != 32 {
            return Err(format!(
                "an Ed25519 key is 32 bytes, this one {}",
                key.len()
            ));
        }
        Ok(PublicKey::Ed25519(key))
    } else if alg.starts_with(OID_RSA) {
        Ok(PublicKey::Rsa(key))
    } else {
        Err("the key is neither Ed25519 nor RSA".into())
    }
}

/// One DER element of tag `tag` at the start of `der`: (its content, what follows it).
fn tlv(der: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = der.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |a, &b| (a << 8) | b as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// The keys a listener trusts, one per scheme at most.
#[derive(Clone, Debug, Default)]
pub struct Keys {
    pub ed25519: Option<PublicKey>,
    pub rsa: Option<PublicKey>,
}

/// Why a request was refused (401).
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No signature header of a scheme with a key.
    Missing,
    /// Signatures were there; none verified.
    Invalid,
}

impl Keys {
    /// Sorts `key` into its scheme's place; refused if that place is taken by another key.
    pub fn add(&mut self, key: PublicKey) -> Result<(), String> {
        let slot = match key {
            PublicKey::Ed25519(_) => &mut self.ed25519,
            PublicKey::Rsa(_) => &mut self.rsa,
        };
        match slot {
            Some(k) if *k != key => Err(format!("two different {} keys were given", key.name())),
            _ => {
                *slot = Some(key);
                Ok(())
            }
        }
    }

    /// Which scheme verified `body`, given the values of the two signature headers.
    pub fn verify(
        &self,
        body: &[u8],
        ed25519_sig: Option<&[u8]>,
        rsa_sig: Option<&[u8]>,
    ) -> Result<&'static str, Refusal> {
        let pairs = [(&self.ed25519, ed25519_sig), (&self.rsa, rsa_sig)];
        let mut tried = false;
        for (key, sig) in pairs {
            let (Some(key), Some(sig)) = (key, sig) else {
                continue;
            };
            tried = true;
            let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(sig.trim_ascii()) else {
                continue;
            };
            let ok = match key {
                PublicKey::Ed25519(k) => UnparsedPublicKey::new(&ED25519, k).verify(body, &sig),
                PublicKey::Rsa(k) => {
                    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, k).verify(body, &sig)
                }
            };
            if ok.is_ok() {
                return Ok(key.name());
            }
        }
        Err(if tried {
            Refusal::Invalid
        } else {
            Refusal::Missing
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{Ed25519KeyPair, KeyPair};

    fn b64(b: &[u8]) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .encode(b)
            .into_bytes()
    }

    fn ed25519_pem(public: &[u8]) -> String {
        let mut der = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
        ];
        der.extend_from_slice(public);
        let text = base64::engine::general_purpose::STANDARD.encode(der);
        format!("-----BEGIN PUBLIC KEY-----\n{text}\n-----END PUBLIC KEY-----\n")
    }

    #[test]
    fn ghls_published_key_reads_as_rsa() {
        let key = PublicKey::from_pem(GHL_RSA_PUBLIC_KEY).unwrap();
        assert!(
            matches!(&key, PublicKey::Rsa(k) if k.len() > 500),
            "{key:?}"
        );
    }

    #[test]
    fn an_ed25519_signature_over_the_raw_bytes_verifies_and_nothing_else_does() {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let mut keys = Keys::default();
        keys.add(PublicKey::from_pem(&ed25519_pem(pair.public_key().as_ref())).unwrap())
            .unwrap();
        let body = br#"{"type":"ContactCreate","webhookId":"w1"}"#;
        let sig = b64(pair.sign(body).as_ref());
        assert_eq!(keys.verify(body, Some(&sig), None), Ok("Ed25519"));
        // One byte more (a space a re-serialiser would drop) fails.
        let mut other = body.to_vec();
        other.push(b' ');
        assert_eq!(keys.verify(&other, Some(&sig), None), Err(Refusal::Invalid));
        assert_eq!(
            keys.verify(body, Some(b"not base64!"), None),
            Err(Refusal::Invalid)
        );
        assert_eq!(keys.verify(body, None, None), Err(Refusal::Missing));
        // An RSA header without an RSA key is no signature at all.
        assert_eq!(keys.verify(body, None, Some(&sig)), Err(Refusal::Missing));
    }

    /// A throwaway 2048-bit key made with openssl for this test only.
    #[test]
    fn an_rsa_signature_verifies_with_its_pem_key() {
        let pair = ring::signature::RsaKeyPair::from_pkcs8(include_bytes!("testdata/rsa-test.pk8"))
            .unwrap();
        let mut keys = Keys::default();
        keys.add(PublicKey::from_pem(include_str!("testdata/rsa-test.pub.pem")).unwrap())
            .unwrap();
        let body = br#"{"type":"NoteCreate","webhookId":"w2"}"#;
        let mut sig = vec![0; pair.public().modulus_len()];
        pair.sign(
            &ring::signature::RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            body,
            &mut sig,
        )
        .unwrap();
        assert_eq!(keys.verify(body, None, Some(&b64(&sig))), Ok("RSA"));
        assert_eq!(
            keys.verify(b"{}", None, Some(&b64(&sig))),
            Err(Refusal::Invalid)
        );
        // GHL's key does not verify what the test key signed.
        let mut ghl = Keys::default();
        ghl.add(PublicKey::from_pem(GHL_RSA_PUBLIC_KEY).unwrap())
            .unwrap();
        assert_eq!(
            ghl.verify(body, None, Some(&b64(&sig))),
            Err(Refusal::Invalid)
        );
    }

    #[test]
    fn bad_pem_says_what_is_wrong() {
        let e = PublicKey::from_pem("hello").unwrap_err();
        assert!(e.contains("BEGIN PUBLIC KEY"), "{e}");
        let e = PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\n!!!\n-----END PUBLIC KEY-----")
            .unwrap_err();
        assert!(e.contains("base64"), "{e}");
        let e = PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----")
            .unwrap_err();
        assert!(e.contains("SubjectPublicKeyInfo"), "{e}");
    }
}
