//! RSA-2048 key generation for the sandbox's own signing key.
//!
//! ring can sign and verify but cannot generate RSA keys, so generation alone uses the
//! `rsa` crate; the key is exported as PKCS#8 PEM and from then on loaded and used through
//! `scanbind_ams::PrivateKey` (ring) like any other key. Randomness comes from ring's
//! system RNG, adapted to the `rand_core` traits `rsa` expects.

use ring::rand::SecureRandom as _;
use rsa::pkcs8::{EncodePrivateKey as _, LineEnding};
use rsa::rand_core::{CryptoRng, Error as RandError, RngCore};

use crate::error::{Error, Result};

/// ring's `SystemRandom` as a `rand_core` RNG.
struct SystemRng(ring::rand::SystemRandom);

impl RngCore for SystemRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // The system RNG failing is not recoverable for key generation; `try_fill_bytes`
        // is what rsa calls through `CryptoRngCore` where it matters.
        if self.0.fill(dest).is_err() {
            dest.fill(0);
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> std::result::Result<(), RandError> {
        self.0.fill(dest).map_err(|_| {
            RandError::from(
                std::num::NonZeroU32::new(RandError::CUSTOM_START)
                    .unwrap_or(std::num::NonZeroU32::MIN),
            )
        })
    }
}

impl CryptoRng for SystemRng {}

/// Generates an RSA-2048 private key and returns it as PKCS#8 PEM.
pub fn generate_pkcs8_pem() -> Result<String> {
    let mut rng = SystemRng(ring::rand::SystemRandom::new());
    let key =
        rsa::RsaPrivateKey::new(&mut rng, 2048).map_err(|e| Error::KeyGeneration(e.to_string()))?;
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| Error::KeyGeneration(e.to_string()))?;
    Ok(pem.to_string())
}
