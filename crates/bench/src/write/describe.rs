//! The driver's log line about a write run.

use super::{WriteRecord, WriteWorkload};

/// One line about run `r`: its figure, requests, peak RSS and restore check.
pub(super) fn describe(r: &WriteRecord) -> String {
    let mut s = format!("{:<5} {:<14}", r.target.name(), r.workload.name());
    if let Some(secs) = r.timed_out_secs {
        s.push_str(&format!(" killed after {secs} s"));
    }
    if let Some(e) = &r.error {
        s.push_str(&format!(" ERROR {e}"));
    }
    // A run that failed inside its measured section has no duration to divide by.
    if let Some(o) = r.output.as_ref().filter(|o| o.ms > 0.0) {
        let secs = o.ms / 1000.0;
        match r.workload {
            WriteWorkload::TxFull | WriteWorkload::TxOff => {
                s.push_str(&format!(" {:.0} tx/s", o.txs as f64 / secs));
            }
            WriteWorkload::BatchFull | WriteWorkload::BatchOff => {
                s.push_str(&format!(" {:.0} rows/s", o.rows as f64 / secs));
            }
            WriteWorkload::CommitVisible => {
                let v: Vec<String> = o.visible_ms.iter().map(|m| format!("{m:.0}")).collect();
                s.push_str(&format!(" visible after [{}] ms", v.join(", ")));
                if o.visible_timeouts > 0 {
                    s.push_str(&format!(" ({} never)", o.visible_timeouts));
                }
            }
            WriteWorkload::UploadRate => s.push_str(&format!(
                " {} uploads in {:.1} s ({} commits)",
                o.upload_at_ms.len(),
                secs,
                o.txs
            )),
            WriteWorkload::OpenWrite => s.push_str(&format!(" {:.1} ms", o.ms)),
            WriteWorkload::BigTx => return crate::bigtx::describe(r),
        }
        if let Some(req) = &o.requests {
            s.push_str(&format!(" [{}P {}G {}L]", req.put, req.gets(), req.list));
        }
        s.push_str(&format!(" rss={}MB", o.vmhwm_kb / 1024));
    }
    match &r.restored {
        Some(Ok(n)) => s.push_str(&format!(" restored {n} rows")),
        Some(Err(e)) => s.push_str(&format!(" RESTORE FAILED {e}")),
        None => {}
    }
    s
}
