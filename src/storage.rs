//! Where a warehouse or a folder of nights lives: a local folder (a path or a `file://`
//! URL) or a prefix in an S3 bucket (`s3://bucket/prefix`, also MinIO, Ceph, R2 and
//! other S3-compatible servers through `AWS_ENDPOINT_URL`).
//!
//! Both are reached through the `object_store` crate DataFusion itself reads with (0.13,
//! the local file system or its S3 client), so the warehouse check, the partition
//! listing, the row checks and the queries take one path whatever the storage.
//!
//! S3 settings are the AWS tools' environment variables: `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` (or `AWS_DEFAULT_REGION`),
//! `AWS_ENDPOINT_URL`, and `AWS_ALLOW_HTTP=true` for a plain-http endpoint (refused
//! otherwise). Profile files (`~/.aws/config`, `AWS_PROFILE`) are not read: `object_store`
//! reads them only through the whole AWS SDK. Every request times out after
//! [`REQUEST_TIMEOUT`] (connecting: [`CONNECT_TIMEOUT`]) and is retried at most
//! [`RETRIES`] times within [`RETRY_TIME`]; `AWS_TIMEOUT` and `AWS_CONNECT_TIMEOUT`
//! (e.g. `2m`) change the first two.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
use datafusion::parquet::arrow::async_reader::AsyncFileReader;
use datafusion::parquet::errors::{ParquetError, Result as ParquetResult};
use datafusion::parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use datafusion::prelude::SessionContext;
use futures::FutureExt;
use futures::TryStreamExt;
use futures::future::BoxFuture;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientConfigKey, ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload,
    RetryConfig,
};
use url::Url;

use crate::error::{ArqError, Result};

/// How long one request may take before it is retried.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long connecting to the endpoint may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How many times a failed request is tried again.
pub const RETRIES: usize = 3;
/// The time after which a failing request is not tried again.
pub const RETRY_TIME: Duration = Duration::from_secs(60);

/// A folder, local or in a bucket.
#[derive(Clone)]
pub struct Location {
    /// As the user wrote it (no trailing `/`): what messages and manifests show.
    given: String,
    store: Arc<dyn ObjectStore>,
    /// The URL the store is registered under in a session (`s3://bucket/`, `file:///`).
    base: Url,
    /// The folder's objects' common prefix in the store.
    prefix: ObjectPath,
    /// The folder, when it is on this machine.
    local: Option<PathBuf>,
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.given)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.given)
    }
}

/// A folder's entries: sub-folders' names and the files, both sorted by name.
#[derive(Debug, Default)]
pub struct Listing {
    pub folders: Vec<String>,
    pub files: Vec<ObjectMeta>,
}

impl Location {
    /// A local path, `file:///path`, or `s3://bucket[/prefix]`.
    pub fn parse(given: &str) -> Result<Self> {
        let usage = |m: String| ArqError::Usage(m);
        if let Some((scheme, _)) = given.split_once("://") {
            let url =
                Url::parse(given).map_err(|e| usage(format!("`{given}` is not a URL: {e}")))?;
            return match scheme.to_ascii_lowercase().as_str() {
                "file" => {
                    let path = url
                        .to_file_path()
                        .map_err(|_| usage(format!("`{given}` is not a local file URL")))?;
                    Location::local(path)
                }
                "s3" | "s3a" => Location::s3(&url),
                other => Err(usage(format!(
                    "`{given}`: `{other}://` is not a storage arq reads; use a local folder, \
                     file:// or s3://bucket/prefix"
                ))),
            };
        }
        Location::local(PathBuf::from(given))
    }

    /// A local folder.
    pub fn local(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let absolute = std::path::absolute(path).map_err(|e| ArqError::io(path, e))?;
        let prefix = ObjectPath::from_absolute_path(&absolute).map_err(|e| {
            ArqError::Usage(format!("{}: not a usable folder name: {e}", path.display()))
        })?;
        let shown = path.display().to_string();
        let given = match shown.trim_end_matches('/') {
            "" => shown.clone(),
            trimmed => trimmed.to_string(),
        };
        Ok(Location {
            given,
            store: Arc::new(LocalFileSystem::new()),
            base: Url::parse("file:///").expect("a constant URL"),
            prefix,
            local: Some(path.to_path_buf()),
        })
    }

    /// `s3://bucket/prefix`, with the AWS tools' environment variables.
    fn s3(url: &Url) -> Result<Self> {
        let bucket = url.host_str().filter(|b| !b.is_empty()).ok_or_else(|| {
            ArqError::Usage(format!("`{url}`: no bucket (write s3://bucket/prefix)"))
        })?;
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        for (key, default) in [
            (ClientConfigKey::Timeout, REQUEST_TIMEOUT),
            (ClientConfigKey::ConnectTimeout, CONNECT_TIMEOUT),
        ] {
            let key = AmazonS3ConfigKey::Client(key);
            if builder.get_config_value(&key).is_none() {
                builder = builder.with_config(key, format!("{}s", default.as_secs()));
            }
        }
        let store = builder
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(5),
                    base: 2.0,
                },
                max_retries: RETRIES,
                retry_timeout: RETRY_TIME,
            })
            .build()
            .map_err(|e| {
                ArqError::Usage(format!("{url}: {}", crate::error::one_line(&e.to_string())))
            })?;
        let prefix = ObjectPath::from_url_path(url.path())
            .map_err(|e| ArqError::Usage(format!("{url}: not a usable object prefix: {e}")))?;
        let base = Url::parse(&format!("s3://{bucket}/"))
            .map_err(|e| ArqError::Usage(format!("{url}: {e}")))?;
        Ok(Location {
            given: url.as_str().trim_end_matches('/').to_string(),
            store: Arc::new(store),
            base,
            prefix,
            local: None,
        })
    }

    /// The folder on this machine, when it is local.
    pub fn local_path(&self) -> Option<&Path> {
        self.local.as_deref()
    }

    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The folder however it was written (`data/demo`, `./data/demo/`, its absolute path,
    /// `file:///…`): its store's URL and its absolute prefix (`file:///home/a/data/demo`,
    /// `s3://bucket/prefix`). What state kept beside the outputs is compared with.
    pub fn identity(&self) -> String {
        format!("{}{}", self.base, self.prefix)
    }

    /// The folder's prefix in its store.
    pub fn prefix(&self) -> &ObjectPath {
        &self.prefix
    }

    /// The folder `name` inside this one (`name` may hold `/`).
    pub fn join(&self, name: &str) -> Location {
        let mut prefix = self.prefix.clone();
        for part in name.split('/').filter(|p| !p.is_empty()) {
            prefix = prefix.join(part);
        }
        Location {
            given: format!("{}/{}", self.given.trim_end_matches('/'), name),
            store: self.store.clone(),
            base: self.base.clone(),
            prefix,
            local: self.local.as_ref().map(|p| p.join(name)),
        }
    }

    /// The object `name` (may hold `/`) inside this folder.
    pub fn object(&self, name: &str) -> ObjectPath {
        self.join(name).prefix
    }

    /// An object's path below this folder (`customers/snapshot_date=…/part-0.parquet`).
    pub fn relative(&self, object: &ObjectPath) -> String {
        match object.prefix_match(&self.prefix) {
            Some(parts) => parts
                .map(|p| p.as_ref().to_string())
                .collect::<Vec<_>>()
                .join("/"),
            None => object.to_string(),
        }
    }

    /// An object as messages show it: this folder as given, then the object's path below.
    pub fn show(&self, object: &ObjectPath) -> String {
        match self.relative(object) {
            relative if relative.is_empty() => self.given.clone(),
            relative => format!("{}/{relative}", self.given.trim_end_matches('/')),
        }
    }

    /// The URL DataFusion lists this folder under (a trailing `/`: a folder).
    pub fn listing_url(&self) -> Result<ListingTableUrl> {
        let url = match &self.local {
            Some(path) => {
                let absolute = std::path::absolute(path).map_err(|e| ArqError::io(path, e))?;
                format!("{}/", absolute.display().to_string().trim_end_matches('/'))
            }
            None => format!("{}{}/", self.base, self.prefix),
        };
        Ok(ListingTableUrl::parse(url)?)
    }

    /// Makes the store known to `ctx` (local files need nothing: every session reads them).
    pub fn register(&self, ctx: &SessionContext) {
        if self.local.is_none() {
            ctx.register_object_store(&self.base, self.store.clone());
        }
    }

    /// The folder's entries, or `None` when there is no such folder (in a bucket: no
    /// object under the prefix).
    pub async fn list(&self) -> Result<Option<Listing>> {
        if let Some(path) = &self.local {
            match std::fs::metadata(path) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Ok(None),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(ArqError::io(path, e)),
            }
        }
        let listed = self
            .store
            .list_with_delimiter(Some(&self.prefix))
            .await
            .map_err(|e| self.error(&self.prefix, e))?;
        let mut folders: Vec<String> = listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        folders.sort();
        let mut files = listed.objects;
        files.sort_by(|a, b| a.location.cmp(&b.location));
        if self.local.is_none() && folders.is_empty() && files.is_empty() {
            return Ok(None);
        }
        Ok(Some(Listing { folders, files }))
    }

    /// Every object below this folder, sorted by path.
    pub async fn list_all(&self) -> Result<Vec<ObjectMeta>> {
        let mut all: Vec<ObjectMeta> = self
            .store
            .list(Some(&self.prefix))
            .try_collect()
            .await
            .map_err(|e| self.error(&self.prefix, e))?;
        all.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(all)
    }

    /// The bytes of the object `name` in this folder, `None` when there is none.
    pub async fn read(&self, name: &str) -> Result<Option<Bytes>> {
        let object = self.object(name);
        match self.store.get(&object).await {
            Ok(got) => Ok(Some(got.bytes().await.map_err(|e| self.error(&object, e))?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error(&object, e)),
        }
    }

    /// Writes the object `name` in this folder (one PUT: readers see all of it or the
    /// object as it was).
    pub async fn write(&self, name: &str, bytes: Vec<u8>) -> Result<()> {
        let object = self.object(name);
        self.store
            .put(&object, PutPayload::from(bytes))
            .await
            .map_err(|e| self.error(&object, e))?;
        Ok(())
    }

    /// One line naming the object and what went wrong, with the likely cause for the
    /// failures people meet: a missing bucket or object, denied access, an endpoint that
    /// does not answer.
    pub fn error(&self, object: &ObjectPath, e: object_store::Error) -> ArqError {
        storage_error(&self.show(object), &e)
    }
}

/// The one line of a storage failure on `what` (a folder or object as shown to people).
pub fn storage_error(what: &str, e: &object_store::Error) -> ArqError {
    let full = crate::error::one_line(&error_chain(e));
    let lower = full.to_ascii_lowercase();
    let cause = if matches!(e, object_store::Error::NotFound { .. }) {
        if lower.contains("nosuchbucket") {
            "the bucket does not exist".to_string()
        } else {
            "no such object".to_string()
        }
    } else if lower.contains("nosuchbucket") {
        "the bucket does not exist".to_string()
    } else if lower.contains("169.254.169.254") {
        "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (none are set, and \
         no instance metadata service answered)"
            .to_string()
    } else if matches!(
        e,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) || lower.contains("403 forbidden")
        || lower.contains("accessdenied")
        || lower.contains("invalidaccesskeyid")
        || lower.contains("signaturedoesnotmatch")
    {
        "access denied (check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN)"
            .to_string()
    } else if lower.contains("url scheme is not allowed") {
        "the endpoint is plain http: set AWS_ALLOW_HTTP=true to allow it".to_string()
    } else if lower.contains("timed out") || lower.contains("deadline has elapsed") {
        format!(
            "timed out (each request {} s, retried {RETRIES} times within {} s; \
             AWS_TIMEOUT changes the first)",
            REQUEST_TIMEOUT.as_secs(),
            RETRY_TIME.as_secs()
        )
    } else if lower.contains("error sending request")
        || lower.contains("connection refused")
        || lower.contains("dns error")
        || lower.contains("tcp connect error")
    {
        "cannot reach the storage endpoint (check AWS_ENDPOINT_URL and the network)".to_string()
    } else {
        String::new()
    };
    let detail = shorten(&full, 300);
    let message = match cause.is_empty() {
        true => detail,
        false => format!("{cause} ({detail})"),
    };
    ArqError::Storage {
        what: what.to_string(),
        message,
    }
}

/// A Parquet file in a store, read by ranges (the footer with one request when it fits
/// in [`FOOTER_HINT`]; column chunks through `get_ranges`, which joins nearby ranges).
/// parquet 59 deprecates its own `ParquetObjectReader` in favour of such a reader.
pub struct StoreReader {
    store: Arc<dyn ObjectStore>,
    meta: ObjectMeta,
}

/// The bytes read from a file's end for its footer in the first request.
pub const FOOTER_HINT: usize = 64 * 1024;

impl StoreReader {
    pub fn new(store: Arc<dyn ObjectStore>, meta: ObjectMeta) -> Self {
        StoreReader { store, meta }
    }
}

fn to_parquet(e: object_store::Error) -> ParquetError {
    ParquetError::External(Box::new(e))
}

impl AsyncFileReader for StoreReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, ParquetResult<Bytes>> {
        async move {
            let store = self.store.clone();
            store
                .get_range(&self.meta.location, range)
                .await
                .map_err(to_parquet)
        }
        .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, ParquetResult<Vec<Bytes>>> {
        async move {
            self.store
                .get_ranges(&self.meta.location, &ranges)
                .await
                .map_err(to_parquet)
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, ParquetResult<Arc<ParquetMetaData>>> {
        async move {
            let size = self.meta.size;
            let metadata = ParquetMetaDataReader::new()
                .with_prefetch_hint(Some(FOOTER_HINT))
                .with_arrow_reader_options(options)
                .load_and_finish(self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

/// A failure reading a Parquet file `what` through a store: the storage's own failure
/// when it is one (a deleted object, denied access), else `otherwise`'s.
pub fn parquet_error(
    what: &str,
    e: ParquetError,
    otherwise: impl FnOnce(ParquetError) -> ArqError,
) -> ArqError {
    match e {
        ParquetError::External(source) => match source.downcast::<object_store::Error>() {
            Ok(store_error) => storage_error(what, &store_error),
            Err(other) => otherwise(ParquetError::External(other)),
        },
        e => otherwise(e),
    }
}

/// The error and its sources, which hold the HTTP status and the server's words.
fn error_chain(e: &object_store::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// The object stores of a process that reads what others name: local files, and any
/// bucket a plan names (`s3://bucket/…`), its client made on first use with the same
/// settings as [`Location::parse`] (the AWS_* variables of this process). A cluster's
/// scheduler and executors read the warehouses of their clients' plans through it.
#[derive(Debug, Default)]
pub struct BucketRegistry {
    stores: datafusion::execution::object_store::DefaultObjectStoreRegistry,
}

impl datafusion::execution::object_store::ObjectStoreRegistry for BucketRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.stores.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        self.stores.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn ObjectStore>> {
        if let Ok(store) = self.stores.get_store(url) {
            return Ok(store);
        }
        match url.scheme() {
            "s3" | "s3a" => {
                let bucket = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
                let location = Location::parse(&bucket)
                    .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
                let store = location.store().clone();
                self.stores.register_store(&location.base, store.clone());
                Ok(store)
            }
            _ => self.stores.get_store(url),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_paths_file_urls_and_buckets() {
        let local = Location::parse("data/demo").unwrap();
        assert_eq!(local.to_string(), "data/demo");
        assert!(local.local_path().is_some());
        let file = Location::parse("file:///tmp/wh").unwrap();
        assert_eq!(file.local_path(), Some(Path::new("/tmp/wh")));
        let s3 = Location::parse("s3://bucket/some/prefix/").unwrap();
        assert_eq!(s3.to_string(), "s3://bucket/some/prefix");
        assert!(s3.local_path().is_none());
        assert_eq!(s3.prefix().as_ref(), "some/prefix");
        assert_eq!(
            s3.join("customers").listing_url().unwrap().as_str(),
            "s3://bucket/some/prefix/customers/"
        );
        let object = s3.object("customers/snapshot_date=2026-10-31/part-0.parquet");
        assert_eq!(
            s3.relative(&object),
            "customers/snapshot_date=2026-10-31/part-0.parquet"
        );
        assert_eq!(
            s3.show(&object),
            "s3://bucket/some/prefix/customers/snapshot_date=2026-10-31/part-0.parquet"
        );
        assert!(matches!(
            Location::parse("gs://bucket/x"),
            Err(ArqError::Usage(m)) if m.contains("gs://")
        ));
        assert!(matches!(
            Location::parse("s3:///x"),
            Err(ArqError::Usage(_))
        ));
    }

    #[test]
    fn storage_errors_say_the_likely_cause_first() {
        let generic = |text: &str| object_store::Error::Generic {
            store: "S3",
            source: text.to_string().into(),
        };
        let cause = |e: object_store::Error| match storage_error("s3://b/wh", &e) {
            ArqError::Storage { what, message } => {
                assert_eq!(what, "s3://b/wh");
                message
            }
            other => panic!("{other}"),
        };
        let starts = |e, wanted: &str| {
            let message = cause(e);
            assert!(message.starts_with(wanted), "{message}");
        };
        starts(
            generic(
                "Server returned non-2xx status code: 404 Not Found: <Code>NoSuchBucket</Code>",
            ),
            "the bucket does not exist",
        );
        starts(
            generic("Server returned non-2xx status code: 403 Forbidden: <Code>InvalidAccessKeyId"),
            "access denied",
        );
        // "403" inside a duration is not a refusal.
        starts(
            generic(
                "GET http://h/b in 12.403ms - error sending request: tcp connect error: Connection refused",
            ),
            "cannot reach the storage endpoint",
        );
        starts(
            generic("GET http://h/b in 30s - error sending request: operation timed out"),
            "timed out",
        );
        starts(
            generic("HTTP error: builder error: URL scheme is not allowed"),
            "the endpoint is plain http",
        );
        starts(
            object_store::Error::NotFound {
                path: "wh/x.parquet".into(),
                source: "404".into(),
            },
            "no such object",
        );
        // Anything else keeps the store's words, on one line, shortened.
        let long = format!("Something else\n{}", "x".repeat(1000));
        let message = cause(generic(&long));
        assert!(
            message.starts_with("Generic S3 error: Something else x"),
            "{message}"
        );
        assert!(message.chars().count() <= 301, "{message}");
    }
}
