// Offline validation of Kubernetes manifests: every document of every file is checked
// against the schema of its apiVersion/kind with kubernetes-models (types, required
// fields, unknown kinds; it does not catch unknown fields), KEDA objects against
// keda.schema.json (KEDA's CRDs are not in kubernetes-models), then the set as a whole:
// unique names, every Secret/ConfigMap/Deployment a manifest refers to is defined (with the
// key it uses), and the KEDA trigger watches the campaign's '<experiment>.sim' queue.
//
//   NODE_PATH=<dir>/node_modules node validate.js [--single] FILE...
// --single: check each file alone (no cross-references), for the negative fixtures.
// Prints one line per object, "N passed, N failed" last; exits 1 on any failure.
'use strict';
const fs = require('fs');
const path = require('path');
const yaml = require('js-yaml');
const Ajv = require('ajv');

const args = process.argv.slice(2);
const single = args[0] === '--single';
const files = single ? args.slice(1) : args;
let passed = 0;
let failed = 0;
const ok = (what) => { passed++; console.log(`ok   ${what}`); };
const fail = (what, why) => { failed++; console.log(`FAIL ${what}: ${why}`); };

const ajv = new Ajv({ allErrors: true, strict: false });
const kedaSchemas = JSON.parse(fs.readFileSync(path.join(__dirname, 'keda.schema.json'), 'utf8'));
const kedaValidators = {};
for (const [kind, schema] of Object.entries(kedaSchemas.kinds)) kedaValidators[kind] = ajv.compile(schema);

// apiVersion "v1" -> kubernetes-models/v1, "apps/v1" -> kubernetes-models/apps/v1
function modelClass(apiVersion, kind) {
  let mod;
  try {
    mod = require(`kubernetes-models/${apiVersion}`);
  } catch (e) {
    throw new Error(`unknown apiVersion '${apiVersion}'`);
  }
  if (typeof mod[kind] !== 'function') throw new Error(`unknown kind '${kind}' in '${apiVersion}'`);
  return mod[kind];
}

function validateObject(obj) {
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) throw new Error('document is not a mapping');
  if (typeof obj.apiVersion !== 'string' || typeof obj.kind !== 'string') throw new Error('apiVersion and kind are required strings');
  if (!obj.metadata || typeof obj.metadata.name !== 'string' || !obj.metadata.name) throw new Error('metadata.name is required');
  if (obj.apiVersion.startsWith('keda.sh/')) {
    const v = obj.apiVersion === kedaSchemas.apiVersion ? kedaValidators[obj.kind] : undefined;
    if (!v) throw new Error(`unknown kind '${obj.kind}' in '${obj.apiVersion}'`);
    if (!v(obj)) throw new Error(ajv.errorsText(v.errors, { dataVar: obj.kind }));
    return;
  }
  const Cls = modelClass(obj.apiVersion, obj.kind);
  new Cls(obj).validate();
}

// ---- each object alone
const objects = [];
for (const file of files) {
  let docs;
  try {
    docs = yaml.loadAll(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    fail(path.basename(file), `yaml: ${e.message.split('\n')[0]}`);
    continue;
  }
  docs.forEach((obj, i) => {
    if (obj === null || obj === undefined) return;
    const what = `${path.basename(file)}#${i + 1} ${obj && obj.kind}/${obj && obj.metadata && obj.metadata.name}`;
    try {
      validateObject(obj);
      ok(what);
      objects.push({ what, obj });
    } catch (e) {
      fail(what, String(e.message || e).replace(/\s+/g, ' ').slice(0, 400));
    }
  });
}

// ---- the set as a whole
function crossCheck() {
  const byKey = new Map();
  const find = (kind, ns, name) => byKey.get(`${kind}/${ns}/${name}`);
  for (const { what, obj } of objects) {
    const key = `${obj.kind}/${obj.metadata.namespace || ''}/${obj.metadata.name}`;
    if (byKey.has(key)) fail(what, `duplicate ${key}`);
    byKey.set(key, obj);
  }
  const secretHas = (ns, name, key) => {
    const s = find('Secret', ns, name);
    return s && ((s.stringData && key in s.stringData) || (s.data && key in s.data));
  };
  const cmHas = (ns, name, key) => {
    const c = find('ConfigMap', ns, name);
    return c && (!key || (c.data && key in c.data));
  };
  for (const { what, obj } of objects) {
    const ns = obj.metadata.namespace || '';
    const problems = [];
    const podSpec = obj.kind === 'Job' || obj.kind === 'Deployment' || obj.kind === 'StatefulSet'
      ? obj.spec.template.spec : null;
    if (podSpec) {
      if (ns && !find('Namespace', '', ns)) problems.push(`namespace '${ns}' is not defined`);
      for (const v of podSpec.volumes || []) {
        if (v.secret) for (const it of v.secret.items || [{ key: null }])
          if (!(it.key ? secretHas(ns, v.secret.secretName, it.key) : find('Secret', ns, v.secret.secretName)))
            problems.push(`volume '${v.name}': Secret '${v.secret.secretName}' key '${it.key}' is not defined`);
        if (v.configMap && !cmHas(ns, v.configMap.name, null))
          problems.push(`volume '${v.name}': ConfigMap '${v.configMap.name}' is not defined`);
      }
      const containers = (podSpec.containers || []).concat(podSpec.initContainers || []);
      for (const c of containers) {
        for (const e of c.env || []) {
          const r = e.valueFrom && e.valueFrom.secretKeyRef;
          if (r && !secretHas(ns, r.name, r.key)) problems.push(`env '${e.name}': Secret '${r.name}' key '${r.key}' is not defined`);
        }
        for (const m of c.volumeMounts || [])
          if (!(podSpec.volumes || []).some((v) => v.name === m.name) &&
              !((obj.spec.volumeClaimTemplates || []).some((t) => t.metadata.name === m.name)))
            problems.push(`container '${c.name}': mount of undefined volume '${m.name}'`);
      }
    }
    if (obj.kind === 'Service' && obj.spec.selector) {
      const sel = Object.entries(obj.spec.selector);
      const matches = objects.some(({ obj: o }) => (o.kind === 'Deployment' || o.kind === 'StatefulSet') &&
        (o.metadata.namespace || '') === ns &&
        sel.every(([k, v]) => ((o.spec.template.metadata || {}).labels || {})[k] === v));
      if (!matches) problems.push('its selector matches no pod template');
    }
    if (obj.kind === 'TriggerAuthentication')
      for (const r of obj.spec.secretTargetRef || [])
        if (!secretHas(ns, r.name, r.key)) problems.push(`secretTargetRef: Secret '${r.name}' key '${r.key}' is not defined`);
    if (obj.kind === 'ScaledObject') {
      const t = obj.spec.scaleTargetRef;
      const kind = t.kind || 'Deployment';
      if (!find(kind, ns, t.name)) problems.push(`scaleTargetRef: ${kind} '${t.name}' is not defined`);
      const campaign = find('ConfigMap', ns, 'specline-campaign');
      let experiment = null;
      try { experiment = yaml.load(campaign.data['config.yaml']).experiment; } catch (e) { /* reported below */ }
      for (const tr of obj.spec.triggers) {
        if (tr.type === 'rabbitmq' && tr.metadata.queueName !== `${experiment}.sim`)
          problems.push(`trigger watches '${tr.metadata.queueName}', the campaign's work queue is '${experiment}.sim'`);
        if (tr.authenticationRef && !find('TriggerAuthentication', ns, tr.authenticationRef.name))
          problems.push(`TriggerAuthentication '${tr.authenticationRef.name}' is not defined`);
      }
    }
    if (problems.length) fail(`${what} references`, problems.join('; '));
    else ok(`${what} references`);
  }
}
if (!single) crossCheck();
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
