//! An `object_store` that misbehaves on demand, for the deterministic engine fault tests (built
//! only with the `fault-points` feature, never in the product). It wraps a real store and, per
//! operation and key, fails a call, stalls it, or serves a listing that lacks keys (a listing
//! that lags behind the writes). Stalls sleep on the tokio clock, so a test on a paused clock
//! (`#[tokio::test(start_paused = true)]`) decides when they end, and the engine's own
//! intervals and back-offs move with the same clock: SlateDB tests its engine this way.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use parking_lot::Mutex;

/// The calls a fault can target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// GET, whole or ranged.
    Get,
    /// HEAD (`ObjectStore::head` is a GET with `head: true`).
    Head,
    /// PUT.
    Put,
    /// LIST, by prefix and offset or by delimiter.
    List,
    /// DELETE.
    Delete,
}

/// What happens to a call that a rule matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The call fails with a generic store error (the engine sees object storage unavailable).
    Error,
    /// The call waits this long on the tokio clock, then goes through.
    Stall(Duration),
    /// A LIST goes through but omits the keys that contain the rule's text.
    Stale,
}

#[derive(Debug)]
struct Rule {
    op: Op,
    key: String,
    fault: Fault,
    left: u32,
}

#[derive(Debug, Default)]
struct State {
    rules: Vec<Rule>,
    calls: Vec<(Op, String)>,
    injected: u64,
}

/// The wrapper. Clones share rules and counters, so a test keeps one and hands the engine
/// another.
#[derive(Clone, Debug)]
pub struct FaultyStore {
    inner: Arc<dyn ObjectStore>,
    state: Arc<Mutex<State>>,
}

impl fmt::Display for FaultyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FaultyStore({})", self.inner)
    }
}

impl FaultyStore {
    /// Wraps `inner`; no fault until [`FaultyStore::inject`].
    pub fn new(inner: Arc<dyn ObjectStore>) -> FaultyStore {
        FaultyStore {
            inner,
            state: Arc::default(),
        }
    }

    /// The next `times` calls of `op` whose key (for a LIST, its prefix; for [`Fault::Stale`],
    /// the listed keys) contains `key` meet `fault`. Rules are consumed in the order given.
    pub fn inject(&self, op: Op, key: &str, fault: Fault, times: u32) {
        self.state.lock().rules.push(Rule {
            op,
            key: key.to_string(),
            fault,
            left: times,
        });
    }

    /// Calls of `op` so far whose key contains `key`, faulty or not.
    pub fn calls(&self, op: Op, key: &str) -> usize {
        let st = self.state.lock();
        st.calls
            .iter()
            .filter(|(o, k)| *o == op && k.contains(key))
            .count()
    }

    /// Faults injected so far.
    pub fn injected(&self) -> u64 {
        self.state.lock().injected
    }

    /// Records the call and takes the first live rule for it (a stale rule matches any LIST:
    /// it filters by the listed keys).
    fn take(&self, op: Op, key: &str) -> Option<(Fault, String)> {
        let mut st = self.state.lock();
        st.calls.push((op, key.to_string()));
        let rule = st.rules.iter_mut().find(|r| {
            r.left > 0 && r.op == op && (r.fault == Fault::Stale || key.contains(&r.key))
        })?;
        rule.left -= 1;
        let hit = (rule.fault, rule.key.clone());
        st.injected += 1;
        Some(hit)
    }

    /// Applies an error or a stall; `Some(text)` for a stale listing's filter.
    async fn before(&self, op: Op, key: &str) -> object_store::Result<Option<String>> {
        match self.take(op, key) {
            None => Ok(None),
            Some((Fault::Error, _)) => Err(injected(op, key)),
            Some((Fault::Stall(d), _)) => {
                tokio::time::sleep(d).await;
                Ok(None)
            }
            Some((Fault::Stale, hide)) => Ok(Some(hide)),
        }
    }

    fn list_faulty(
        &self,
        prefix: Option<&Path>,
        inner: BoxStream<'static, object_store::Result<ObjectMeta>>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let me = self.clone();
        let key = prefix.map(|p| p.to_string()).unwrap_or_default();
        futures::stream::once(async move {
            match me.before(Op::List, &key).await {
                Err(e) => futures::stream::once(async { Err(e) }).boxed(),
                Ok(None) => inner,
                Ok(Some(hide)) => inner
                    .try_filter(move |m| {
                        futures::future::ready(!m.location.as_ref().contains(&hide))
                    })
                    .boxed(),
            }
        })
        .flatten()
        .boxed()
    }
}

fn injected(op: Op, key: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: "FaultyStore",
        source: format!("injected fault: {op:?} {key}").into(),
    }
}

#[async_trait]
impl ObjectStore for FaultyStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.before(Op::Put, location.as_ref()).await?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.before(Op::Put, location.as_ref()).await?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let op = if options.head { Op::Head } else { Op::Get };
        self.before(op, location.as_ref()).await?;
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> object_store::Result<Vec<Bytes>> {
        self.before(Op::Get, location.as_ref()).await?;
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let me = self.clone();
        let checked = locations
            .then(move |p| {
                let me = me.clone();
                async move {
                    let p = p?;
                    me.before(Op::Delete, p.as_ref()).await?;
                    Ok(p)
                }
            })
            .boxed();
        self.inner.delete_stream(checked)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.list_faulty(prefix, self.inner.list(prefix))
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.list_faulty(prefix, self.inner.list_with_offset(prefix, offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let key = prefix.map(|p| p.to_string()).unwrap_or_default();
        let hide = self.before(Op::List, &key).await?;
        let mut out = self.inner.list_with_delimiter(prefix).await?;
        if let Some(hide) = hide {
            out.objects.retain(|m| !m.location.as_ref().contains(&hide));
        }
        Ok(out)
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.before(Op::Put, to.as_ref()).await?;
        self.inner.copy_opts(from, to, options).await
    }
}
