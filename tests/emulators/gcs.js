// The Google Cloud Storage JSON API for the integration tests: the Storage emulator inside npm firebase-tools, served
// over HTTPS without the firebase CLI. The CLI insists on Java 21 (Debian 12 has 17) for its security-rules runtime,
// which the GCS API routes never use: they go through the emulator's admin layer, which allows every request.
// Objects live in memory (and in $TMPDIR/firebase/storage/blobs: give each instance its own TMPDIR); any bucket name
// works without being created.
//
// Two fixes make pgBackRest's resumable uploads work (files larger than repo-storage-upload-chunk-size):
// - pgBackRest reads the upload id from the x-guploader-uploadid header; the emulator only puts it in location.
// - the emulator finalizes a resumable upload on its first PUT; pgBackRest sends chunks with
//   "content-range: bytes a-b/*" (expects 308, more to come) and only the last one with the total size.
//
// usage: node gcs.js <host> <port> <cert.pem> <key.pem>
'use strict';
const fs = require('node:fs');
const https = require('node:https');
const express = require('express');
const { StorageEmulator } = require('firebase-tools/lib/emulator/storage/index.js');
const { createApp } = require('firebase-tools/lib/emulator/storage/server.js');
const { EmulatorRegistry } = require('firebase-tools/lib/emulator/registry.js');

const [host, port, cert, key] = process.argv.slice(2);
if (!key) {
  console.error('usage: node gcs.js <host> <port> <cert.pem> <key.pem>');
  process.exit(2);
}

const emulator = new StorageEmulator({ projectId: 'backrest-agent-tests', host, port: Number(port), auto_download: false });
// The routes ask the registry for the emulator's own address (else: "Cannot determine host and port of storage").
EmulatorRegistry.set('storage', emulator);

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

const fixes = express.Router();
fixes.post('/upload/storage/v1/b/:bucket/o', (req, res, next) => {
  if (req.query.uploadType === 'resumable' && !req.query.upload_id) {
    const set = res.set.bind(res);
    res.set = res.header = (field, value) => {
      if (typeof field === 'string' && field.toLowerCase() === 'location') {
        set('x-guploader-uploadid', new URL(value).searchParams.get('upload_id'));
      }
      return set(field, value);
    };
  }
  next();
});
fixes.put('/upload/storage/v1/b/:bucket/o', async (req, res, next) => {
  // An intermediate chunk: append it and ask for more. The last chunk goes to the emulator, which finalizes.
  if (!req.query.upload_id || !/\/\*$/.test(req.get('content-range') || '')) {
    return next();
  }
  try {
    emulator.uploadService.continueResumableUpload(String(req.query.upload_id), await readBody(req));
    res.sendStatus(308);
  } catch (err) {
    next(err);
  }
});

createApp(emulator.args.projectId, emulator).then((storage) => {
  const app = express();
  app.use((req, res, next) => {
    console.log(`${new Date().toISOString()} ${req.method} ${req.originalUrl}`);
    next();
  });
  app.use(fixes);
  app.use(storage);
  https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, app)
    .listen(Number(port), host, () => console.log(`GCS emulator listening on https://${host}:${port}`));
}).catch((err) => {
  console.error(err);
  process.exit(1);
});
