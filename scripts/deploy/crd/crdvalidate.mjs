// Offline CRD validation (ServiceMonitor, PrometheusRule, ExternalSecret, ClusterSecretStore) against the JSON
// schemas that @kubernetes-models/* ship (generated from the upstream CRDs; versions pinned in package.json).
// usage: node crdvalidate.mjs file.yaml [...]
// exit 1 on any invalid custom resource, and on any apiVersion/kind of these CRD groups it has no schema for
// (kubernetes-validate skips these groups, so nothing may slip between the two).
import fs from "node:fs";
import yaml from "js-yaml";

const MODELS = {
  "monitoring.coreos.com/v1": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1",
  "monitoring.coreos.com/v1alpha1": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1alpha1",
  "external-secrets.io/v1": "@kubernetes-models/external-secrets/external-secrets.io/v1",
  "external-secrets.io/v1beta1": "@kubernetes-models/external-secrets/external-secrets.io/v1beta1",
};
const CRD_GROUPS = new Set(["monitoring.coreos.com", "external-secrets.io"]);

let failed = 0;
let ok = 0;
for (const file of process.argv.slice(2)) {
  const docs = yaml.loadAll(fs.readFileSync(file, "utf8")).filter(Boolean);
  for (const d of docs) {
    const id = `${file} ${d.kind}/${d.metadata?.name}`;
    const apiVersion = String(d.apiVersion ?? "");
    const group = apiVersion.includes("/") ? apiVersion.slice(0, apiVersion.lastIndexOf("/")) : "";
    const base = MODELS[apiVersion];
    if (!base) {
      if (CRD_GROUPS.has(group)) {
        console.log(`ERROR ${id}: no schema for ${apiVersion} (unknown or removed version)`);
        failed++;
      }
      continue; // a core kind: kubernetes-validate checks it
    }
    let mod;
    try {
      mod = await import(`${base}/${d.kind}`);
    } catch {
      console.log(`ERROR ${id}: unknown kind ${d.kind} in ${apiVersion}`);
      failed++;
      continue;
    }
    try {
      new mod[d.kind](d).validate();
      console.log(`OK    ${id} (${apiVersion})`);
      ok++;
    } catch (e) {
      console.log(`ERROR ${id}: ${e.message}`);
      failed++;
    }
  }
}
console.error(`==> CRDs: ${ok} valid, ${failed} invalid`);
process.exit(failed ? 1 : 0);
