// Prints, as JSON, every GraphQL document the installed Stigg SDKs can send (each with the
// fragments it spreads, so it stands alone): read from node_modules at run time, never
// copied into Tollgate. tests/graphql_api/test_documents.py validates each against Tollgate's
// schema.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { print } = require('graphql');

function documentsOf(module) {
  return Object.entries(module)
    .filter(([name, value]) => name.endsWith('Document') && value?.kind === 'Document')
    .map(([, value]) => {
      const operation = value.definitions.find((d) => d.kind === 'OperationDefinition');
      return { name: operation.name.value, kind: operation.operation, document: print(value) };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

// Each SDK sends the documents of the api-client-js it depends on (its own version).
function documentsOfSdk(name) {
  const sdk = createRequire(require.resolve(name));
  // Both api-client-js versions declare the same fragment names; that is expected here.
  sdk('graphql-tag').disableFragmentWarnings();
  return documentsOf(sdk('@stigg/api-client-js/src/generated/sdk.js'));
}

console.log(JSON.stringify({
  'node-server-sdk': documentsOfSdk('@stigg/node-server-sdk'),
  'js-client-sdk': documentsOfSdk('@stigg/js-client-sdk'),
}));
