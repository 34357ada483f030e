// Turns what was dropped into a flat list of { file, name }. Folders are walked through
// webkitGetAsEntry (where the browser has it) and their files named by their path, so
// "photos/2024/a.jpg" keeps its folder in the name.

function readEntries(reader) {
  return new Promise((resolve, reject) => reader.readEntries(resolve, reject));
}

function entryFile(entry) {
  return new Promise((resolve, reject) => entry.file(resolve, reject));
}

async function walk(entry, out) {
  if (entry.isFile) {
    out.push({ file: await entryFile(entry), name: entry.fullPath.replace(/^\//, "") });
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    // readEntries answers in batches (100 in Chromium) until it returns an empty one.
    for (let batch = await readEntries(reader); batch.length; batch = await readEntries(reader)) {
      for (const child of batch) await walk(child, out);
    }
  }
}

/**
 * Must be called during the drop event: a DataTransfer's items are emptied once the handler
 * returns, so entries and files are taken synchronously and only walked afterwards.
 */
export function droppedFiles(dataTransfer) {
  const taken = [];
  for (const item of dataTransfer.items || []) {
    if (item.kind !== "file") continue;
    const entry = item.webkitGetAsEntry?.();
    const file = item.getAsFile();
    if (entry?.isDirectory) taken.push({ entry });
    else if (file) taken.push({ file, name: file.name });
  }
  if (!taken.length) {
    for (const file of dataTransfer.files || []) taken.push({ file, name: file.name });
  }
  return (async () => {
    const out = [];
    for (const item of taken) {
      if (item.entry) await walk(item.entry, out);
      else out.push(item);
    }
    return out;
  })();
}

/** Files picked with the file input: a folder pick gives each file its relative path. */
export function pickedFiles(input) {
  return [...input.files].map((file) => ({ file, name: file.webkitRelativePath || file.name }));
}
