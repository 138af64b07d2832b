// Creates blob containers (pgBackRest never creates its Azure container), readable without a key so that tests
// can list what pgBackRest stored; AZURE_CONTAINER_ACCESS=private makes them private (Azurite then refuses a wrong key
// instead of falling back to the anonymous read). The account key comes from the
// environment, the CA that signed the emulator's certificate from NODE_EXTRA_CA_CERTS.
// usage: AZURE_STORAGE_KEY=... node azure-container.js <https://host:port/account> <account> <container>...
'use strict';
const { BlobServiceClient, StorageSharedKeyCredential } = require('@azure/storage-blob');

const [url, account, ...containers] = process.argv.slice(2);
const service = new BlobServiceClient(url, new StorageSharedKeyCredential(account, process.env.AZURE_STORAGE_KEY));
(async () => {
  for (const name of containers) {
    await service.getContainerClient(name).createIfNotExists(process.env.AZURE_CONTAINER_ACCESS === 'private' ? {} : { access: 'container' });
  }
})().catch((err) => {
  console.error(`creating ${containers.join(', ')} at ${url} failed: ${err.message}`);
  process.exit(1);
});
