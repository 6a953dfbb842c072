//! Who may connect to `arq serve`: SCRAM-SHA-256 credentials (RFC 5802, as Postgres
//! uses them) from a users file, or one user from `ARQ_SERVE_USER` /
//! `ARQ_SERVE_PASSWORD`.
//!
//! The file (`--users users.toml`, written by `arq serve --add-user NAME`) holds, per
//! user, a random 16-byte salt and the salted password `Hi(password, salt, 4096)` that
//! SCRAM's server side needs — never the password. A salted password lets whoever reads it
//! log in as that user (it is what the SCRAM exchange proves knowledge of), so the file is
//! written with mode 0600 and the server refuses a file that others can read, as ssh and
//! Postgres do for their keys.
//!
//! A user the file does not name gets a made-up salt and salted password derived from a
//! per-process secret, so an unknown user fails at the same step, with the same error
//! (28P01), as a wrong password: a client cannot probe for names.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use pgwire::api::auth::sasl::scram::{SCRAM_ITERATIONS, gen_salted_password};
use pgwire::api::auth::{AuthSource, LoginInfo, Password};
use pgwire::error::PgWireResult;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::error::{ArqError, Result};

/// The environment variables of the one-user setup.
pub const USER_VAR: &str = "ARQ_SERVE_USER";
pub const PASSWORD_VAR: &str = "ARQ_SERVE_PASSWORD";

/// One user's SCRAM credentials.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// The salt, base64.
    pub salt: String,
    /// `Hi(password, salt, iterations)`, base64.
    pub salted_password: String,
    /// The PBKDF2 iterations (4096, Postgres's default and the SCRAM minimum).
    pub iterations: usize,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    /// Credentials for `password` with a fresh random salt.
    pub fn new(password: &str) -> Result<Credentials> {
        let mut salt = [0u8; 16];
        SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| ArqError::Internal("the system's random source failed".into()))?;
        Ok(Credentials {
            salt: STANDARD.encode(salt),
            salted_password: STANDARD.encode(gen_salted_password(
                password,
                &salt,
                SCRAM_ITERATIONS,
            )),
            iterations: SCRAM_ITERATIONS,
        })
    }

    fn password(&self, user: &str, path: &Path) -> Result<Password> {
        let bad = |what: &str| ArqError::Input(format!("{}: user {user}: {what}", path.display()));
        if self.iterations != SCRAM_ITERATIONS {
            return Err(bad(&format!(
                "iterations is {}, the server uses {SCRAM_ITERATIONS} (set the password \
                 again with `arq serve --add-user {user}`)",
                self.iterations
            )));
        }
        let salt = STANDARD
            .decode(&self.salt)
            .map_err(|_| bad("salt is not base64"))?;
        let salted = STANDARD
            .decode(&self.salted_password)
            .map_err(|_| bad("salted_password is not base64"))?;
        if salt.is_empty() || salted.len() != 32 {
            return Err(bad("salt or salted_password has the wrong length"));
        }
        Ok(Password::new(Some(salt), salted))
    }
}

/// The users file: `[users.NAME]` tables of credentials.
#[derive(Debug, Default, Serialize, Deserialize)]
struct UsersFile {
    #[serde(default)]
    users: BTreeMap<String, Credentials>,
}

const FILE_HEADER: &str = "\
# arq serve users: SCRAM-SHA-256 salted passwords (RFC 5802), written by
# `arq serve --users FILE --add-user NAME`. Whoever reads this file can log in as
# these users: keep it mode 0600.
";

/// The users a server accepts.
#[derive(Debug, Clone)]
pub struct Users {
    known: BTreeMap<String, Password>,
    /// The key of the made-up credentials of unknown users.
    decoy: [u8; 32],
}

impl Users {
    /// The users of `--users FILE` and of `ARQ_SERVE_USER` / `ARQ_SERVE_PASSWORD`.
    pub fn load(file: Option<&Path>) -> Result<Users> {
        let mut known = BTreeMap::new();
        if let Some(path) = file {
            check_private(path)?;
            for (name, credentials) in read_file(path)?.users {
                let password = credentials.password(&name, path)?;
                known.insert(name, password);
            }
        }
        match (std::env::var(USER_VAR), std::env::var(PASSWORD_VAR)) {
            (Ok(user), Ok(password)) if !user.is_empty() && !password.is_empty() => {
                let credentials = Credentials::new(&password)?;
                let password = credentials.password(&user, Path::new(PASSWORD_VAR))?;
                known.insert(user, password);
            }
            (Ok(_), Err(_)) | (Err(_), Ok(_)) => {
                return Err(ArqError::Usage(format!(
                    "set both {USER_VAR} and {PASSWORD_VAR}, or neither"
                )));
            }
            (Ok(u), Ok(p)) if u.is_empty() || p.is_empty() => {
                return Err(ArqError::Usage(format!(
                    "{USER_VAR} and {PASSWORD_VAR} must not be empty"
                )));
            }
            _ => {}
        }
        let mut decoy = [0u8; 32];
        SystemRandom::new()
            .fill(&mut decoy)
            .map_err(|_| ArqError::Internal("the system's random source failed".into()))?;
        Ok(Users { known, decoy })
    }

    /// Whether any user is configured.
    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    /// How many users are configured.
    pub fn len(&self) -> usize {
        self.known.len()
    }

    /// The salt and salted password to check `user` against: made up for an unknown
    /// user, so the exchange fails at the proof like a wrong password.
    fn password_of(&self, user: &str) -> Password {
        if let Some(p) = self.known.get(user) {
            return p.clone();
        }
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.decoy);
        let salt = hmac::sign(&key, format!("salt:{user}").as_bytes());
        let salted = hmac::sign(&key, format!("password:{user}").as_bytes());
        Password::new(Some(salt.as_ref()[..16].to_vec()), salted.as_ref().to_vec())
    }
}

#[async_trait]
impl AuthSource for Users {
    async fn get_password(&self, login: &LoginInfo) -> PgWireResult<Password> {
        Ok(self.password_of(login.user().unwrap_or("")))
    }
}

fn read_file(path: &Path) -> Result<UsersFile> {
    let text = std::fs::read_to_string(path).map_err(|e| ArqError::io(path, e))?;
    toml::from_str(&text).map_err(|e| ArqError::Input(format!("{}: {e}", path.display())))
}

/// Refuses a users file that others than its owner can read or write.
fn check_private(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .map_err(|e| ArqError::io(path, e))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(ArqError::Input(format!(
                "{}: the users file is readable or writable by others (mode {:o}); \
                 run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            )));
        }
    }
    Ok(())
}

/// `arq serve --users FILE --add-user NAME`: asks for the password (twice on a terminal,
/// one line from stdin otherwise) and writes NAME's salted password into FILE (created
/// with mode 0600; an existing user's password is replaced).
pub fn add_user(path: &Path, name: &str) -> Result<String> {
    if name.is_empty() || name.chars().any(|c| c.is_control() || c == '"') {
        return Err(ArqError::Usage(format!("`{name}` is not a user name")));
    }
    let mut file = match path.exists() {
        true => {
            check_private(path)?;
            read_file(path)?
        }
        false => UsersFile::default(),
    };
    let password = read_password(name)?;
    let replaced = file
        .users
        .insert(name.to_string(), Credentials::new(&password)?)
        .is_some();
    let text = toml::to_string(&file)
        .map_err(|e| ArqError::Internal(format!("cannot write the users file: {e}")))?;
    write_private(path, &format!("{FILE_HEADER}{text}"))?;
    Ok(format!(
        "{} {name} in {}",
        if replaced {
            "changed the password of"
        } else {
            "added"
        },
        path.display()
    ))
}

fn read_password(name: &str) -> Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .map_err(|e| ArqError::io("<stdin>", e))?;
        let password = line.trim_end_matches(['\r', '\n']).to_string();
        if password.is_empty() {
            return Err(ArqError::Input("no password on stdin".into()));
        }
        return Ok(password);
    }
    let first = prompt_hidden(&format!("password for {name}: "))?;
    if first.is_empty() {
        return Err(ArqError::Input("the password is empty".into()));
    }
    let second = prompt_hidden("again: ")?;
    if first != second {
        return Err(ArqError::Input("the passwords differ".into()));
    }
    Ok(first)
}

/// Reads a line from the terminal without echoing it.
fn prompt_hidden(prompt: &str) -> Result<String> {
    let mut stderr = std::io::stderr();
    let _ = write!(stderr, "{prompt}");
    let _ = stderr.flush();
    let echo = EchoOff::new();
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    // ECHONL has already moved to the next line.
    drop(echo);
    read.map_err(|e| ArqError::io("<stdin>", e))?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

/// Terminal echo off while it lives (stdin's termios).
struct EchoOff {
    #[cfg(unix)]
    saved: Option<libc::termios>,
}

impl EchoOff {
    fn new() -> EchoOff {
        #[cfg(unix)]
        {
            // SAFETY: tcgetattr/tcsetattr on stdin with a zeroed, then filled, termios.
            unsafe {
                let mut term: libc::termios = std::mem::zeroed();
                if libc::tcgetattr(libc::STDIN_FILENO, &mut term) != 0 {
                    return EchoOff { saved: None };
                }
                let saved = term;
                term.c_lflag &= !libc::ECHO;
                term.c_lflag |= libc::ECHONL;
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &term);
                EchoOff { saved: Some(saved) }
            }
        }
        #[cfg(not(unix))]
        EchoOff {}
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(saved) = &self.saved {
            // SAFETY: restores the termios read in `new`.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, saved);
            }
        }
    }
}

/// Writes `text` to `path` through a temporary file with mode 0600 and a rename.
fn write_private(path: &Path, text: &str) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "users.toml".into());
    let temp: PathBuf = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options
        .open(&temp)
        .and_then(|mut f| f.write_all(text.as_bytes()).and_then(|()| f.sync_all()));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(ArqError::io(&temp, e));
    }
    std::fs::rename(&temp, path).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        ArqError::io(path, e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_round_trip_through_the_file_format() {
        let c = Credentials::new("s3cret").unwrap();
        let mut file = UsersFile::default();
        file.users.insert("ana".into(), c.clone());
        let text = toml::to_string(&file).unwrap();
        assert!(!text.contains("s3cret"), "{text}");
        let back: UsersFile = toml::from_str(&text).unwrap();
        assert_eq!(back.users["ana"], c);
        let p = c.password("ana", Path::new("x")).unwrap();
        let salt = p.salt().unwrap().to_vec();
        assert_eq!(
            p.password(),
            gen_salted_password("s3cret", &salt, SCRAM_ITERATIONS)
        );
    }

    #[test]
    fn two_users_with_one_password_get_different_salts() {
        let a = Credentials::new("same").unwrap();
        let b = Credentials::new("same").unwrap();
        assert_ne!(a.salt, b.salt);
        assert_ne!(a.salted_password, b.salted_password);
    }

    #[test]
    fn unknown_users_get_stable_made_up_credentials() {
        let users = Users {
            known: BTreeMap::new(),
            decoy: [7; 32],
        };
        let a = users.password_of("mallory");
        let b = users.password_of("mallory");
        assert_eq!(a.salt(), b.salt());
        assert_eq!(a.password(), b.password());
        assert_ne!(users.password_of("eve").salt(), a.salt());
    }

    #[test]
    fn a_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        std::fs::write(&path, "").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = Users::load(Some(&path)).unwrap_err().to_string();
            assert!(e.contains("chmod 600"), "{e}");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(Users::load(Some(&path)).is_ok());
    }
}
