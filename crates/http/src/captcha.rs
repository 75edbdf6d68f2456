//! hCaptcha on the web channel: one shared client, every verification with a
//! deadline, and a secret and site key checked when the configuration is
//! read (the crate panics on some malformed secrets instead of refusing them).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use thiserror::Error;
use tracing::{error, warn};

/// hCaptcha's own address; tests point `UNDERSIGNED_HCAPTCHA_VERIFY_URL` at a fake.
pub const DEFAULT_VERIFY_URL: &str = "https://api.hcaptcha.com/siteverify";

#[derive(Debug, Error)]
pub enum CaptchaConfigError {
    #[error("UNDERSIGNED_HCAPTCHA_VERIFY_URL: {0}; expected a URL like {DEFAULT_VERIFY_URL}")]
    VerifyUrl(String),
}

/// hCaptcha's secret: `0x` and 40 hex digits, or `ES_` and 32. Checked the
/// way the crate checks it when a request is made, once, before the service
/// starts (the crate panics on some malformed secrets instead of refusing them).
#[derive(Clone, PartialEq, Eq)]
pub struct CaptchaSecret(String);

impl FromStr for CaptchaSecret {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const FORM: &str = "expected 0x and 40 hex digits, or ES_ and 32 hex digits";
        let secret = s.trim();
        // The crate slices the first two bytes of a secret before checking it.
        if secret.len() < 3 || !secret.is_ascii() {
            return Err(FORM);
        }
        let probe = hcaptcha::Captcha::new("probe").map_err(|_| FORM)?;
        hcaptcha::Request::new(secret, probe).map_err(|_| FORM)?;
        Ok(Self(secret.to_owned()))
    }
}

impl fmt::Display for CaptchaSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Never shows the secret in a debug print.
impl fmt::Debug for CaptchaSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CaptchaSecret(..)")
    }
}

/// hCaptcha's public site key, a UUID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptchaSitekey(String);

impl FromStr for CaptchaSitekey {
    type Err = &'static str;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const FORM: &str = "expected a UUID";
        // A well-formed secret, only to ask the crate whether it takes the key.
        const ANY_SECRET: &str = "0x0000000000000000000000000000000000000000";
        let sitekey = s.trim();
        let probe = hcaptcha::Captcha::new("probe").map_err(|_| FORM)?;
        hcaptcha::Request::new(ANY_SECRET, probe)
            .and_then(|r| r.set_sitekey(sitekey))
            .map_err(|_| FORM)?;
        Ok(Self(sitekey.to_owned()))
    }
}

impl fmt::Display for CaptchaSitekey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a signature's captcha did not pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CaptchaRefusal {
    /// No token came with the signature.
    #[error("captcha required")]
    Missing,
    /// hCaptcha says the token is not a solved, fresh captcha for this site.
    #[error("captcha failed")]
    Failed,
    /// hCaptcha did not answer in time, or not sensibly.
    #[error("captcha service unreachable")]
    Unreachable,
    /// hCaptcha refused the service's own credentials: never accepted
    /// unverified, whatever the petition says about outages.
    #[error("captcha misconfigured")]
    Misconfigured,
}

pub struct Captcha {
    client: hcaptcha::Client,
    secret: String,
    sitekey: String,
    timeout: Duration,
}

impl Captcha {
    /// The one shared client; `verify_url` is hCaptcha's own, or a fake's in tests.
    pub fn new(
        secret: &CaptchaSecret,
        sitekey: &CaptchaSitekey,
        verify_url: &url::Url,
        timeout: Duration,
    ) -> Result<Self, CaptchaConfigError> {
        // hCaptcha's reqwest has no TLS provider of its own, and takes the
        // process's: ring, which `run` installs first; here too, for a
        // caller that starts no service.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = hcaptcha::Client::new_with(verify_url.as_str())
            .map_err(|e| CaptchaConfigError::VerifyUrl(e.to_string()))?;
        Ok(Self {
            client,
            secret: secret.0.clone(),
            sitekey: sitekey.0.clone(),
            timeout,
        })
    }

    /// The public site key, for forms to render the widget.
    pub fn sitekey(&self) -> &str {
        &self.sitekey
    }

    /// Asks hCaptcha whether `token` is a solved captcha from `client`.
    pub async fn verify(&self, token: Option<&str>, client: IpAddr) -> Result<(), CaptchaRefusal> {
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(CaptchaRefusal::Missing)?;
        let request = hcaptcha::Captcha::new(token)
            .and_then(|mut c| c.set_remoteip(&client.to_string()))
            .and_then(|c| hcaptcha::Request::new(&self.secret, c))
            .and_then(|r| r.set_sitekey(&self.sitekey))
            .map_err(|_| CaptchaRefusal::Failed)?;
        match tokio::time::timeout(self.timeout, self.client.verify_request(request)).await {
            Err(_) => {
                warn!("hcaptcha did not answer in time");
                Err(CaptchaRefusal::Unreachable)
            }
            Ok(Ok(response)) if response.success() => Ok(()),
            Ok(Ok(_)) => Err(CaptchaRefusal::Failed),
            Ok(Err(hcaptcha::Error::Codes(codes))) => {
                use hcaptcha::Code;
                let ours = [
                    Code::MissingSecret,
                    Code::InvalidSecret,
                    Code::MissingSiteKey,
                    Code::InvalidSiteKey,
                    Code::SiteSecretMismatch,
                    Code::BadRequest,
                ];
                if codes.iter().any(|c| ours.contains(c)) {
                    // Our configuration, not the signer's captcha, is at fault.
                    error!(?codes, "hcaptcha refused the service's own request");
                    Err(CaptchaRefusal::Misconfigured)
                } else {
                    Err(CaptchaRefusal::Failed)
                }
            }
            Ok(Err(e)) => {
                warn!(error = %e, "hcaptcha unreachable");
                Err(CaptchaRefusal::Unreachable)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0x0000000000000000000000000000000000000000";
    const SITEKEY: &str = "10000000-ffff-ffff-ffff-000000000001";

    #[test]
    fn malformed_settings_are_refused_not_panicked_on() {
        for bad in ["x", "0x", "é", "0x123", "not a secret at all"] {
            assert!(bad.parse::<CaptchaSecret>().is_err(), "{bad}");
        }
        assert!("site".parse::<CaptchaSitekey>().is_err());
        let (secret, sitekey) = (SECRET.parse().unwrap(), SITEKEY.parse().unwrap());
        let url = DEFAULT_VERIFY_URL.parse().unwrap();
        let captcha = Captcha::new(&secret, &sitekey, &url, Duration::from_secs(1)).unwrap();
        assert_eq!(captcha.sitekey(), SITEKEY);
        assert_eq!(secret.to_string(), SECRET);
        assert_eq!(format!("{secret:?}"), "CaptchaSecret(..)");
    }
}
