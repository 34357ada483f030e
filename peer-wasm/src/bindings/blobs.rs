//! Files in and out of the page: a `Blob` read block by block for an upload, a download built
//! into a `Blob` a few blocks at a time, and an `AbortSignal` as the way to cancel either.

use super::*;

/// Reads a `Blob` one block at a time, so an upload never holds the whole file.
pub(super) struct BlobSource(pub(super) web_sys::Blob);

impl Source for BlobSource {
    fn size(&self) -> u64 {
        self.0.size() as u64
    }

    async fn read(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, FileError> {
        let end = (offset + len as u64).min(self.size());
        let slice = self
            .0
            .slice_with_f64_and_f64(offset as f64, end as f64)
            .map_err(|e| FileError::Read(format!("{e:?}")))?;
        let buffer = wasm_bindgen_futures::JsFuture::from(slice.array_buffer())
            .await
            .map_err(|e| FileError::Read(format!("{e:?}")))?;
        Ok(js_sys::Uint8Array::new(&buffer).to_vec())
    }
}

/// Whether a long operation should go on: not once its `AbortSignal` fired.
pub(super) fn go_on(signal: Option<&web_sys::AbortSignal>) -> std::ops::ControlFlow<()> {
    match signal {
        Some(signal) if signal.aborted() => std::ops::ControlFlow::Break(()),
        _ => std::ops::ControlFlow::Continue(()),
    }
}

/// A re-keying's progress callback: tells the page the bytes done (`on_progress(bytesDone)`)
/// and stops once `signal` is aborted.
pub(super) fn rekey_progress(
    on_progress: Option<js_sys::Function>,
    signal: Option<web_sys::AbortSignal>,
) -> impl FnMut(u64) -> std::ops::ControlFlow<()> {
    move |done: u64| {
        if let Some(f) = &on_progress {
            let _ = f.call1(
                &wasm_bindgen::JsValue::NULL,
                &wasm_bindgen::JsValue::from_f64(done as f64),
            );
        }
        go_on(signal.as_ref())
    }
}

/// Builds a download's `Blob` a few blocks at a time: each batch is folded into the blob so
/// far, which the browser keeps by reference (and pages to disk when large), so the file is
/// never held twice in the tab's memory.
#[derive(Default)]
pub(super) struct BlobSink {
    blob: Option<web_sys::Blob>,
    batch: Vec<js_sys::Uint8Array>,
}

impl BlobSink {
    const BATCH: usize = 8;

    pub(super) fn push(&mut self, block: &[u8]) -> Result<(), JsValue> {
        self.batch.push(js_sys::Uint8Array::from(block));
        if self.batch.len() >= Self::BATCH {
            self.fold()?;
        }
        Ok(())
    }

    fn fold(&mut self) -> Result<(), JsValue> {
        let parts = js_sys::Array::new();
        if let Some(blob) = self.blob.take() {
            parts.push(&blob);
        }
        for part in self.batch.drain(..) {
            parts.push(&part);
        }
        self.blob = Some(web_sys::Blob::new_with_blob_sequence(&parts)?);
        Ok(())
    }

    pub(super) fn finish(mut self) -> Result<web_sys::Blob, JsValue> {
        self.fold()?;
        self.blob
            .ok_or_else(|| js_error("the download produced no blob"))
    }
}

/// A download as the page sees it: each block added to a `Blob`, `on_progress(bytesDone)`
/// called after each, and `signal` aborted to cancel.
pub(super) struct BlobDownload {
    file: BlobSink,
    done: u64,
    on_progress: Option<js_sys::Function>,
    signal: Option<web_sys::AbortSignal>,
}

impl BlobDownload {
    pub(super) fn new(
        on_progress: Option<js_sys::Function>,
        signal: Option<web_sys::AbortSignal>,
    ) -> Self {
        Self {
            file: BlobSink::default(),
            done: 0,
            on_progress,
            signal,
        }
    }

    /// Takes the next block; breaks when the blob cannot grow or the page cancelled.
    pub(super) fn take(&mut self, block: Vec<u8>) -> std::ops::ControlFlow<()> {
        self.done += block.len() as u64;
        if let Err(e) = self.file.push(&block) {
            tracing::warn!("could not add a block to the download: {e:?}");
            return std::ops::ControlFlow::Break(());
        }
        if let Some(f) = &self.on_progress {
            let _ = f.call1(&JsValue::NULL, &JsValue::from_f64(self.done as f64));
        }
        super::go_on(self.signal.as_ref())
    }

    pub(super) fn finish(self) -> Result<web_sys::Blob, JsValue> {
        self.file.finish()
    }
}
