// Offline checks of Bastion's Kubernetes manifests (deploy/kubernetes/README.md, "How this was checked").
//
//   node validate.mjs [manifest directory]      (default: the directory above this one)
//
// For every kustomization under the directory (the base and each overlay) it builds the objects the way
// `kubectl apply -k` would for the features used here (resources, JSON 6902 patches), then checks:
//   1. schema: each object against the Kubernetes OpenAPI schema through kubernetes-models' classes (.validate()),
//      and no field the schema does not know (kubectl's strict field validation); the SecretProviderClass against a
//      JSON schema of the Secrets Store CSI driver's CRD and the Azure provider's parameters. A kind it cannot check
//      fails.
//   2. Bastion's rules: Pod Security "restricted" and more for every container, a PodDisruptionBudget per Deployment,
//      probes, grace periods against the drain, Orleans' labels and pod variables, network policies for both roles,
//      RBAC, the files the CSI driver mounts, autoscaling, and no literal secrets.
// Prints one line per check; exits 1 when any check fails.

import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import Ajv from "ajv";
import jsonPatch from "fast-json-patch";

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeModules = path.join(here, "node_modules");
const root = path.resolve(process.argv[2] ?? path.join(here, ".."));

const failures = [];
const passes = [];
const fail = (where, message) => failures.push(`${where}: ${message}`);
const pass = (message) => passes.push(message);

// ---------------------------------------------------------------------------------------------------------------------
// Building: the part of kustomize these manifests use.

const KUSTOMIZATION_KEYS = new Set(["apiVersion", "kind", "resources", "patches"]);

function readYamlDocuments(file) {
  const documents = YAML.parseAllDocuments(fs.readFileSync(file, "utf8"));
  const objects = [];
  for (const document of documents) {
    if (document.errors.length > 0) {
      fail(rel(file), `not valid YAML: ${document.errors[0].message}`);
      continue;
    }
    const value = document.toJS();
    if (value !== null && value !== undefined) {
      objects.push(value);
    }
  }
  return objects;
}

function build(directory, used) {
  const file = path.join(directory, "kustomization.yaml");
  used.add(file);
  const [kustomization] = readYamlDocuments(file);
  if (kustomization?.kind !== "Kustomization" || kustomization.apiVersion !== "kustomize.config.k8s.io/v1beta1") {
    fail(rel(file), "is not a kustomize.config.k8s.io/v1beta1 Kustomization");
    return [];
  }
  for (const key of Object.keys(kustomization)) {
    if (!KUSTOMIZATION_KEYS.has(key)) {
      fail(rel(file), `uses '${key}', which validate.mjs does not apply: extend it before using it`);
    }
  }

  const objects = [];
  for (const resource of kustomization.resources ?? []) {
    const target = path.resolve(directory, resource);
    if (fs.existsSync(target) && fs.statSync(target).isDirectory()) {
      objects.push(...build(target, used));
    } else if (fs.existsSync(target)) {
      used.add(target);
      for (const object of readYamlDocuments(target)) {
        objects.push({ object, file: rel(target) });
      }
    } else {
      fail(rel(file), `resource ${resource} does not exist`);
    }
  }

  for (const [index, patch] of (kustomization.patches ?? []).entries()) {
    const where = `${rel(file)} patches[${index}]`;
    const { target, patch: text, ...rest } = patch;
    const targetKeys = Object.keys(target ?? {});
    if (Object.keys(rest).length > 0 || targetKeys.length === 0 || targetKeys.some((k) => !["group", "version", "kind", "name"].includes(k)) || typeof text !== "string") {
      fail(where, "only inline JSON 6902 patches with a target of group, version, kind and name are supported");
      continue;
    }
    const operations = YAML.parse(text);
    const matches = objects.filter(({ object }) => targetMatches(target, object));
    if (matches.length !== 1) {
      fail(where, `the target matches ${matches.length} objects, not one`);
      continue;
    }
    try {
      matches[0].object = jsonPatch.applyPatch(structuredClone(matches[0].object), operations, true, false).newDocument;
      matches[0].file += ` (patched by ${rel(file)})`;
    } catch (error) {
      fail(where, `does not apply: ${error.message.split("\n")[0]}`);
    }
  }
  return objects;
}

function targetMatches(target, object) {
  const [group, version] = object.apiVersion?.includes("/") ? object.apiVersion.split("/") : ["", object.apiVersion];
  return (target.kind === undefined || target.kind === object.kind)
    && (target.name === undefined || target.name === object.metadata?.name)
    && (target.group === undefined || target.group === group)
    && (target.version === undefined || target.version === version);
}

const rel = (file) => path.relative(root, file) || ".";

// ---------------------------------------------------------------------------------------------------------------------
// Schema: kubernetes-models' validators, plus unknown fields read from its type declarations, which mirror the
// OpenAPI schema property by property (the validators accept fields the schema does not know).

const modelCache = new Map();

async function modelFor(apiVersion, kind) {
  const key = `${apiVersion}/${kind}`;
  if (!modelCache.has(key)) {
    const module = path.join(nodeModules, "kubernetes-models", apiVersion, `${kind}.js`);
    modelCache.set(key, fs.existsSync(module)
      ? { model: (await import(module))[kind], declarations: module.replace(/\.js$/, ".d.ts") }
      : null);
  }
  return modelCache.get(key);
}

const interfaceCache = new Map();

function loadInterface(file) {
  if (interfaceCache.has(file)) {
    return interfaceCache.get(file);
  }
  let members = null;
  if (fs.existsSync(file)) {
    const text = fs.readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\//g, "");
    const imports = new Map();
    for (const match of text.matchAll(/import \{ (\w+) \} from "([^"]+)";/g)) {
      imports.set(match[1], match[2].startsWith(".")
        ? path.resolve(path.dirname(file), match[2].replace(/\.js$/, ".d.ts"))
        : path.join(nodeModules, `${match[2]}.d.ts`));
    }
    const start = text.search(/export interface \w+( extends [^{]+)? \{/);
    if (start >= 0) {
      members = new Map();
      const body = text.slice(text.indexOf("{", start) + 1);
      let depth = 0;
      let position = 0;
      while (position < body.length) {
        const character = body[position];
        if (depth === 0 && character === "}") {
          break;
        }
        if (depth === 0 && character === "\"") {
          const member = /^"([^"]+)"\??: /.exec(body.slice(position));
          let end = position + member[0].length;
          let typeDepth = 0;
          while (!(typeDepth === 0 && body[end] === ";")) {
            typeDepth += "{<(".includes(body[end]) ? 1 : ")>}".includes(body[end]) ? -1 : 0;
            end++;
          }
          members.set(member[1], classify(body.slice(position + member[0].length, end).trim(), imports));
          position = end + 1;
          continue;
        }
        depth += "{<(".includes(character) ? 1 : ")>}".includes(character) ? -1 : 0;
        position++;
      }
    }
  }
  interfaceCache.set(file, members);
  return members;
}

function classify(type, imports) {
  if (type.startsWith("Array<") && type.endsWith(">")) {
    return { items: classify(type.slice(6, -1).trim(), imports) };
  }
  if (type.startsWith("{")) {
    const value = /\[key: string\]: ([^;]+);/.exec(type);
    return value ? { values: classify(value[1].trim(), imports) } : {};
  }
  return imports.has(type) ? { file: imports.get(type) } : {};
}

function unknownFields(value, type, at, found) {
  if (value === null || typeof value !== "object") {
    return found;
  }
  if (type.items && Array.isArray(value)) {
    value.forEach((item, index) => unknownFields(item, type.items, `${at}[${index}]`, found));
  } else if (type.values) {
    for (const [key, item] of Object.entries(value)) {
      unknownFields(item, type.values, `${at}.${key}`, found);
    }
  } else if (type.file) {
    const members = loadInterface(type.file);
    // A type alias (IntOrString, Quantity) or a free-form object (RawExtension) has no members to check against.
    if (members && members.size > 0 && !Array.isArray(value)) {
      for (const [key, item] of Object.entries(value)) {
        if (!members.has(key)) {
          found.push(`${at}.${key}`);
        } else {
          unknownFields(item, members.get(key), `${at}.${key}`, found);
        }
      }
    }
  }
  return found;
}

// The Secrets Store CSI driver's SecretProviderClass (secrets-store.csi.x-k8s.io/v1): spec.provider, spec.parameters
// (a map of strings) and spec.secretObjects; and the Azure provider's parameters and entries of `objects`.
const stringMap = { type: "object", additionalProperties: { type: "string" } };
const secretProviderClassSchema = {
  type: "object",
  required: ["apiVersion", "kind", "metadata", "spec"],
  additionalProperties: false,
  properties: {
    apiVersion: { const: "secrets-store.csi.x-k8s.io/v1" },
    kind: { const: "SecretProviderClass" },
    metadata: {
      type: "object",
      required: ["name"],
      additionalProperties: false,
      properties: {
        name: { type: "string", pattern: "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", maxLength: 253 },
        namespace: { type: "string" },
        labels: stringMap,
        annotations: stringMap,
      },
    },
    spec: {
      type: "object",
      required: ["provider"],
      additionalProperties: false,
      properties: {
        provider: { type: "string", minLength: 1 },
        parameters: stringMap,
        secretObjects: {
          type: "array",
          items: {
            type: "object",
            required: ["secretName", "type", "data"],
            additionalProperties: false,
            properties: {
              secretName: { type: "string" },
              type: { type: "string" },
              labels: stringMap,
              annotations: stringMap,
              data: {
                type: "array",
                items: {
                  type: "object",
                  required: ["objectName", "key"],
                  additionalProperties: false,
                  properties: { objectName: { type: "string" }, key: { type: "string" } },
                },
              },
            },
          },
        },
      },
    },
  },
};
const azureParametersSchema = {
  type: "object",
  required: ["keyvaultName", "tenantId", "objects"],
  additionalProperties: false,
  properties: {
    usePodIdentity: { enum: ["true", "false"] },
    useVMManagedIdentity: { enum: ["true", "false"] },
    userAssignedIdentityID: { type: "string" },
    clientID: { type: "string" },
    keyvaultName: { type: "string", minLength: 1 },
    cloudName: { type: "string" },
    cloudEnvConfigFilePath: { type: "string" },
    tenantId: { type: "string", minLength: 1 },
    objects: { type: "string" },
  },
};
const azureObjectSchema = {
  type: "object",
  required: ["objectName", "objectType"],
  additionalProperties: false,
  properties: {
    objectName: { type: "string", minLength: 1 },
    objectType: { enum: ["secret", "key", "cert"] },
    objectAlias: { type: "string", pattern: "^[A-Za-z0-9._-]+$" },
    objectVersion: { type: "string" },
    objectVersionHistory: { type: "integer", minimum: 1 },
    objectEncoding: { enum: ["utf-8", "hex", "base64"] },
    objectFormat: { enum: ["pem", "pfx"] },
    filePermission: { type: "string", pattern: "^0[0-7]{3}$" },
  },
};
const ajv = new Ajv({ allErrors: true });
const validateSecretProviderClass = ajv.compile(secretProviderClassSchema);
const validateAzureParameters = ajv.compile(azureParametersSchema);
const validateAzureObject = ajv.compile(azureObjectSchema);
const ajvErrors = (errors) => errors.map((e) => `${e.instancePath || "/"} ${e.message}${e.params?.additionalProperty ? ` (${e.params.additionalProperty})` : ""}`).join("; ");

function azureObjects(spc) {
  const outer = YAML.parse(spc.spec?.parameters?.objects ?? "") ?? {};
  return (outer.array ?? []).map((entry) => YAML.parse(entry));
}

async function checkSchema(items, name) {
  let checked = 0;
  for (const { object, file } of items) {
    const where = `${name}: ${file}: ${object?.kind ?? "?"} ${object?.metadata?.name ?? "?"}`;
    if (typeof object?.apiVersion !== "string" || typeof object?.kind !== "string") {
      fail(where, "has no apiVersion and kind");
      continue;
    }
    if (object.apiVersion === "secrets-store.csi.x-k8s.io/v1" && object.kind === "SecretProviderClass") {
      if (!validateSecretProviderClass(object)) {
        fail(where, `does not match the SecretProviderClass schema: ${ajvErrors(validateSecretProviderClass.errors)}`);
      } else if (object.spec.provider === "azure") {
        if (!validateAzureParameters(object.spec.parameters ?? {})) {
          fail(where, `Azure provider parameters: ${ajvErrors(validateAzureParameters.errors)}`);
        }
        for (const [index, entry] of azureObjects(object).entries()) {
          if (!validateAzureObject(entry)) {
            fail(where, `objects[${index}]: ${ajvErrors(validateAzureObject.errors)}`);
          }
        }
      }
      checked++;
      continue;
    }
    const found = await modelFor(object.apiVersion, object.kind);
    if (!found) {
      fail(where, `unknown kind ${object.apiVersion} ${object.kind}: neither in kubernetes-models nor a CRD validate.mjs knows`);
      continue;
    }
    try {
      new found.model(object).validate();
    } catch (error) {
      fail(where, `does not match the Kubernetes schema: ${error.message}`);
      continue;
    }
    const unknown = unknownFields(object, { file: found.declarations }, "", []);
    if (unknown.length > 0) {
      fail(where, `has fields the Kubernetes schema does not know: ${unknown.join(", ")}`);
      continue;
    }
    checked++;
  }
  return checked;
}

// ---------------------------------------------------------------------------------------------------------------------
// Bastion's rules.

const SILO_USER = 10001;
const RESTRICTED_VOLUME_TYPES = new Set(["configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"]);
const POD_VARIABLES = { POD_NAME: "metadata.name", POD_NAMESPACE: "metadata.namespace", POD_IP: "status.podIP" };
const SECRET_PATTERNS = [
  [/password\s*=\s*[^;\s"']/i, "a password in a connection string"],
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----/, "a private key"],
  [/\bbst_[A-Za-z0-9]{8,}/, "a Bastion API key"],
  [/AccountKey=|SharedAccessSignature=|sig=[A-Za-z0-9%]{20,}/i, "an Azure storage key or signature"],
  [/\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\./, "a JSON web token"],
];

const matchesSelector = (selector, labels) =>
  Object.entries(selector?.matchLabels ?? {}).every(([key, value]) => labels?.[key] === value)
  && (selector?.matchExpressions ?? []).length === 0;

const seconds = (timeSpan) => {
  const match = /^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})$/.exec(timeSpan ?? "");
  return match ? ((Number(match[1] ?? 0) * 24 + Number(match[2])) * 60 + Number(match[3])) * 60 + Number(match[4]) : NaN;
};

function checkPolicy(items, name) {
  const objects = items.map((item) => item.object);
  const all = (kind) => objects.filter((o) => o.kind === kind);
  const named = (kind, objectName) => objects.find((o) => o.kind === kind && o.metadata?.name === objectName);
  const problems = [];
  const check = (condition, what, message) => {
    if (!condition) {
      problems.push(`${what}: ${message}`);
    }
    return condition;
  };

  // Unique objects, one namespace, Pod Security "restricted" on it.
  const seen = new Set();
  for (const o of objects) {
    const key = `${o.kind}/${o.metadata?.namespace ?? ""}/${o.metadata?.name}`;
    check(!seen.has(key), key, "is defined twice");
    seen.add(key);
  }
  const namespaces = all("Namespace");
  if (check(namespaces.length === 1, "Namespace", "exactly one is expected")) {
    const ns = namespaces[0];
    for (const mode of ["enforce", "audit", "warn"]) {
      check(ns.metadata.labels?.[`pod-security.kubernetes.io/${mode}`] === "restricted", `Namespace ${ns.metadata.name}`, `pod-security.kubernetes.io/${mode} must be restricted`);
    }
    for (const o of objects.filter((o) => o.kind !== "Namespace")) {
      check(o.metadata?.namespace === ns.metadata.name, `${o.kind} ${o.metadata?.name}`, `must be in namespace ${ns.metadata.name}`);
    }
  }

  // The shared settings.
  const config = named("ConfigMap", "bastion-config");
  const settings = config?.data ?? {};
  check(config, "ConfigMap bastion-config", "is missing");
  check(settings.Bastion__Kubernetes__Enabled === "true", "ConfigMap bastion-config", "Bastion__Kubernetes__Enabled must be \"true\" (Orleans' Kubernetes hosting)");
  check(settings.Bastion__Node__AdvertisedAddress === undefined, "ConfigMap bastion-config", "Bastion__Node__AdvertisedAddress must not be set: a silo advertises its POD_IP");
  const ports = {
    silo: Number(settings.Bastion__Node__SiloPort), gateway: Number(settings.Bastion__Node__GatewayPort),
    https: Number(settings.Bastion__Http__Port), metrics: Number(settings.Bastion__Telemetry__MetricsPort),
  };
  for (const [port, value] of Object.entries(ports)) {
    check(Number.isInteger(value) && value > 0, "ConfigMap bastion-config", `the ${port} port must be a fixed number`);
  }
  check(settings.Bastion__Keys__KeyVault__Credential === "WorkloadIdentity", "ConfigMap bastion-config", "Key Vault must be read with workload identity");

  // Pods: Deployments and Jobs.
  const workloads = objects.filter((o) => o.kind === "Deployment" || o.kind === "Job");
  const podTemplates = workloads.map((o) => ({ owner: `${o.kind} ${o.metadata.name}`, workload: o, pod: o.spec?.template }));
  const secretProviderClasses = all("SecretProviderClass");
  for (const { owner, workload, pod } of podTemplates) {
    const spec = pod?.spec ?? {};
    const podSecurity = spec.securityContext ?? {};
    check(podSecurity.runAsNonRoot === true, owner, "pod securityContext.runAsNonRoot must be true");
    check(podSecurity.runAsUser === SILO_USER, owner, `pod securityContext.runAsUser must be ${SILO_USER} (the image's user)`);
    check(podSecurity.seccompProfile?.type === "RuntimeDefault", owner, "pod securityContext.seccompProfile.type must be RuntimeDefault");
    for (const host of ["hostNetwork", "hostPID", "hostIPC"]) {
      check(spec[host] !== true, owner, `${host} must not be true`);
    }
    for (const volume of spec.volumes ?? []) {
      const type = Object.keys(volume).find((key) => key !== "name");
      check(RESTRICTED_VOLUME_TYPES.has(type), owner, `volume ${volume.name} of type ${type} is not allowed by Pod Security "restricted"`);
    }
    const volumes = new Map((spec.volumes ?? []).map((v) => [v.name, v]));
    for (const container of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
      const what = `${owner} container ${container.name}`;
      const security = container.securityContext ?? {};
      check((security.runAsNonRoot ?? podSecurity.runAsNonRoot) === true, what, "runAsNonRoot must be true");
      check((security.runAsUser ?? podSecurity.runAsUser) === SILO_USER, what, `runAsUser must be ${SILO_USER}`);
      check(security.allowPrivilegeEscalation === false, what, "allowPrivilegeEscalation must be false");
      check(security.privileged !== true, what, "privileged must not be true");
      check(security.capabilities?.drop?.includes("ALL"), what, "capabilities.drop must include ALL");
      check((security.capabilities?.add ?? []).length === 0, what, "capabilities.add must be empty");
      check((security.seccompProfile ?? podSecurity.seccompProfile)?.type === "RuntimeDefault", what, "seccompProfile.type must be RuntimeDefault");
      check(security.procMount === undefined || security.procMount === "Default", what, "procMount must be Default");
      check(security.readOnlyRootFilesystem === true, what, "readOnlyRootFilesystem must be true");
      check((container.ports ?? []).every((p) => p.hostPort === undefined), what, "must not use hostPort");
      const tmp = (container.volumeMounts ?? []).find((m) => m.mountPath === "/tmp");
      check(tmp && volumes.get(tmp.name)?.emptyDir, what, "needs an emptyDir at /tmp (the root filesystem is read-only)");
      check(/^[^:@]+(:[^:@]+)?:(?!latest$)[\w.-]+$/.test(container.image ?? "") || /@sha256:[0-9a-f]{64}$/.test(container.image ?? ""), what, `image ${container.image} must name a tag other than latest, or a digest`);
      check(container.resources?.requests?.cpu && container.resources?.requests?.memory && container.resources?.limits?.memory, what, "needs cpu and memory requests and a memory limit");
      for (const variable of container.env ?? []) {
        check(!(/PASSWORD|SECRET|TOKEN/i.test(variable.name) && variable.value !== undefined), what, `environment variable ${variable.name} holds a literal value`);
      }
      // The CSI volume: its class exists and mounts every file the settings name.
      for (const mount of container.volumeMounts ?? []) {
        const spcName = volumes.get(mount.name)?.csi?.volumeAttributes?.secretProviderClass;
        if (!spcName) {
          continue;
        }
        check(mount.readOnly === true, what, `the secrets volume at ${mount.mountPath} must be read-only`);
        const spc = secretProviderClasses.find((s) => s.metadata.name === spcName);
        if (!check(spc, what, `SecretProviderClass ${spcName} is not defined`)) {
          continue;
        }
        const files = new Set(azureObjects(spc).map((entry) => entry.objectAlias ?? entry.objectName));
        const text = [...Object.values(container.envFrom?.some((e) => e.configMapRef?.name === "bastion-config") ? settings : {}),
          ...(container.env ?? []).map((v) => v.value ?? "")].join("\n");
        for (const [, file] of text.matchAll(new RegExp(`${mount.mountPath.replace(/[/.]/g, "\\$&")}/([A-Za-z0-9._-]+)`, "g"))) {
          check(files.has(file), what, `${mount.mountPath}/${file} is named in its settings but SecretProviderClass ${spcName} mounts no such file`);
        }
      }
    }
    check(spec.automountServiceAccountToken !== undefined, owner, "must say whether it mounts the service account token");
    if (workload.kind === "Job") {
      check(spec.automountServiceAccountToken === false, owner, "a Job has no use for the API: automountServiceAccountToken must be false");
    }
  }

  // Silo Deployments: roles, Orleans, probes, drain, PDB, RBAC.
  const silos = all("Deployment").filter((d) => d.spec?.template?.metadata?.labels?.["bastion.io/silo"] === "true");
  const roles = new Map();
  const role = (d) => (d.spec.template.spec.containers[0].env ?? []).find((v) => v.name === "Bastion__Node__Roles__0")?.value;
  for (const deployment of silos) {
    const what = `Deployment ${deployment.metadata.name}`;
    const pod = deployment.spec.template;
    const container = pod.spec.containers[0];
    const env = new Map((container.env ?? []).map((v) => [v.name, v]));
    roles.set(role(deployment), deployment);
    check(["api", "worker"].includes(role(deployment)), what, "Bastion__Node__Roles__0 must be api or worker");
    check(container.envFrom?.some((e) => e.configMapRef?.name === "bastion-config"), what, "must take its settings from ConfigMap bastion-config");
    for (const [variable, field] of Object.entries(POD_VARIABLES)) {
      check(env.get(variable)?.valueFrom?.fieldRef?.fieldPath === field, what, `${variable} must come from the downward API (fieldRef ${field})`);
    }
    const labels = pod.metadata.labels ?? {};
    check(labels["orleans/serviceId"] === settings.Bastion__Node__ServiceId, what, "label orleans/serviceId must equal Bastion__Node__ServiceId");
    check(labels["orleans/clusterId"] === settings.Bastion__Node__ClusterId, what, "label orleans/clusterId must equal Bastion__Node__ClusterId");
    check(!Object.keys(deployment.spec.selector?.matchLabels ?? {}).some((key) => key.startsWith("orleans/")), what, "must not select by orleans/ labels (the pod watcher rewrites them)");
    check(labels["azure.workload.identity/use"] === "true", what, "needs label azure.workload.identity/use=true (Key Vault)");
    check(pod.spec.automountServiceAccountToken === true, what, "the pod watcher needs the service account token");

    const containerPorts = new Map((container.ports ?? []).map((p) => [p.name, p.containerPort]));
    for (const [portName, value] of Object.entries(ports)) {
      check(containerPorts.get(portName) === value, what, `container port ${portName} must be ${value}`);
    }
    for (const [probe, pathName] of [["startupProbe", "/healthz"], ["livenessProbe", "/healthz"], ["readinessProbe", "/readyz"]]) {
      const get = container[probe]?.httpGet;
      check(get?.path === pathName && get?.scheme === "HTTPS" && (get?.port === "https" || get?.port === ports.https), what, `${probe} must be GET ${pathName} over HTTPS on the https port`);
    }
    const preStop = container.lifecycle?.preStop;
    check(preStop === undefined || Object.keys(preStop).join() === "sleep", what, "preStop may only sleep: the image has no shell, and SIGTERM itself drains");
    const drain = seconds(env.get("Bastion__Node__DrainTimeout")?.value ?? settings.Bastion__Node__DrainTimeout ?? "00:00:30");
    const needed = (preStop?.sleep?.seconds ?? 0) + drain + 30;
    check(pod.spec.terminationGracePeriodSeconds > needed, what, `terminationGracePeriodSeconds (${pod.spec.terminationGracePeriodSeconds}) must exceed preStop + DrainTimeout + 30 s = ${needed} s`);

    // Workers: a GPU with the node placement and provider to match, or the CPU provider.
    if (role(deployment) === "worker") {
      const provider = env.get("Bastion__Inference__ExecutionProvider")?.value ?? settings.Bastion__Inference__ExecutionProvider ?? "Auto";
      const gpus = container.resources?.limits?.["nvidia.com/gpu"];
      if (gpus !== undefined) {
        check(Number(gpus) >= 1, what, "nvidia.com/gpu must be at least 1");
        check(pod.spec.nodeSelector && Object.keys(pod.spec.nodeSelector).length > 0, what, "a GPU worker needs a nodeSelector for GPU nodes");
        check((pod.spec.tolerations ?? []).some((t) => t.key === "nvidia.com/gpu"), what, "a GPU worker needs the nvidia.com/gpu toleration");
        check(provider === "Cuda", what, "a GPU worker should use ExecutionProvider Cuda (fail fast, never a silent CPU fallback)");
      } else {
        check(provider === "Cpu", what, "a worker without a GPU must use ExecutionProvider Cpu");
      }
    }

    const budgets = all("PodDisruptionBudget").filter((b) => matchesSelector(b.spec?.selector, pod.metadata.labels));
    check(budgets.length === 1, what, `needs exactly one PodDisruptionBudget selecting its pods (found ${budgets.length})`);

    const account = pod.spec.serviceAccountName;
    const bindings = all("RoleBinding").filter((b) => (b.subjects ?? []).some((s) => s.kind === "ServiceAccount" && s.name === account));
    const rules = bindings.flatMap((b) => named("Role", b.roleRef?.name)?.rules ?? []);
    const verbs = new Set(rules.filter((r) => r.resources?.includes("pods") && r.apiGroups?.includes("")).flatMap((r) => r.verbs));
    const allowedVerbs = settings.Bastion__Kubernetes__DeleteDefunctSiloPods === "true" ? ["get", "list", "watch", "patch", "delete"] : ["get", "list", "watch", "patch"];
    check(["get", "list", "watch", "patch"].every((v) => verbs.has(v)), what, `service account ${account} must be allowed to get, list, watch and patch pods (Orleans' pod watcher)`);
    check(rules.every((r) => !r.verbs.includes("*") && !r.resources.includes("*") && r.resources.every((x) => x === "pods") && r.verbs.every((v) => allowedVerbs.includes(v))), what, `service account ${account} may do nothing but ${allowedVerbs.join(", ")} on pods`);
  }
  check(roles.has("api") && roles.has("worker"), "Deployments", "an api and a worker Deployment are expected");
  const apiImage = roles.get("api")?.spec.template.spec.containers[0].image;
  for (const deployment of all("Deployment")) {
    check(all("PodDisruptionBudget").some((b) => matchesSelector(b.spec?.selector, deployment.spec?.template?.metadata?.labels)), `Deployment ${deployment.metadata.name}`, "has no PodDisruptionBudget");
  }

  // The migration Job.
  const migrate = all("Job").find((j) => j.spec?.template?.spec?.containers?.[0]?.args?.[0] === "migrate");
  if (check(migrate, "Job", "a Job running `migrate` is expected")) {
    const what = `Job ${migrate.metadata.name}`;
    const container = migrate.spec.template.spec.containers[0];
    const env = new Map((container.env ?? []).map((v) => [v.name, v.value]));
    check(env.has("ConnectionStrings__BastionOwner") && env.has("ConnectionStrings__BastionKeysOwner"), what, "needs both owners' connection strings");
    check(["Never", "OnFailure"].includes(migrate.spec.template.spec.restartPolicy), what, "restartPolicy must be Never or OnFailure");
    check(migrate.spec.backoffLimit !== undefined && migrate.spec.activeDeadlineSeconds !== undefined, what, "needs backoffLimit and activeDeadlineSeconds");
    check(container.image === apiImage, what, `must run the silos' image (${apiImage}), so the schema matches the code`);
    check(!all("RoleBinding").some((b) => (b.subjects ?? []).some((s) => s.name === migrate.spec.template.spec.serviceAccountName)), what, "its service account must have no role");
  }

  // Autoscaling.
  for (const hpa of all("HorizontalPodAutoscaler")) {
    const what = `HorizontalPodAutoscaler ${hpa.metadata.name}`;
    const target = named(hpa.spec.scaleTargetRef.kind, hpa.spec.scaleTargetRef.name);
    if (check(target, what, `its target ${hpa.spec.scaleTargetRef.name} does not exist`)) {
      check(target.spec.replicas === undefined, what, `${target.metadata.name} must not set replicas: every apply would reset what the autoscaler chose`);
      check(role(target) === "worker", what, "only workers scale on the batching queue");
    }
    check((hpa.spec.metrics ?? []).some((m) => m.type === "Pods" && m.pods?.metric?.name === "bastion_batching_queue_depth"), what, "must scale on the Pods metric bastion_batching_queue_depth");
    check(hpa.spec.minReplicas >= 2, what, "minReplicas must be at least 2, so a drain or a lost node leaves a worker");
  }

  // Network policies.
  const policies = all("NetworkPolicy");
  check(policies.some((p) => Object.keys(p.spec.podSelector ?? {}).length === 0 && ["Ingress", "Egress"].every((t) => p.spec.policyTypes?.includes(t)) && !p.spec.ingress && !p.spec.egress), "NetworkPolicy", "a default deny of ingress and egress for every pod is expected");
  const isSiloPeer = (peer) => peer.podSelector && !peer.namespaceSelector && !peer.ipBlock && matchesSelector(peer.podSelector, { "bastion.io/silo": "true" }) && Object.keys(peer.podSelector.matchLabels ?? {}).join() === "bastion.io/silo";
  const isBackendPeer = (peer) => peer.podSelector?.matchLabels?.["bastion.io/backend"] === "true" && peer.namespaceSelector?.matchLabels?.["bastion.io/backend"] === "true";
  const isDnsPeer = (peer) => peer.podSelector?.matchLabels?.["k8s-app"] === "kube-dns" && peer.namespaceSelector?.matchLabels?.["kubernetes.io/metadata.name"] === "kube-system";
  for (const policy of policies) {
    const what = `NetworkPolicy ${policy.metadata.name}`;
    for (const rule of policy.spec.ingress ?? []) {
      if (!check(rule.from?.length > 0 && rule.ports?.length > 0, what, "every ingress rule must name its sources and ports")) {
        continue;
      }
      for (const { port } of rule.ports) {
        if (port === ports.silo) {
          check(rule.from.every(isSiloPeer), what, `the silo port ${port} may be reached from silo pods only`);
        } else if (port === ports.gateway) {
          check(rule.from.every(isBackendPeer), what, `the gateway port ${port} may be reached only from pods labelled bastion.io/backend=true in namespaces labelled the same`);
        } else if (port === ports.https) {
          check(rule.from.every((peer) => peer.namespaceSelector && !peer.ipBlock) && matchesSelector(policy.spec.podSelector, roles.get("api")?.spec.template.metadata.labels) && !matchesSelector(policy.spec.podSelector, roles.get("worker")?.spec.template.metadata.labels), what, `HTTPS ${port} may be opened to API silos only, from a namespace`);
        } else if (port === ports.metrics) {
          check(rule.from.every((peer) => peer.namespaceSelector && !peer.ipBlock), what, `the metrics port ${port} may be reached from the monitoring namespace only`);
        } else {
          check(false, what, `ingress to port ${port} is not one Bastion serves`);
        }
      }
    }
    for (const rule of policy.spec.egress ?? []) {
      if (!check(rule.to?.length > 0 && rule.ports?.length > 0, what, "every egress rule must name its destinations and ports")) {
        continue;
      }
      for (const { port } of rule.ports) {
        if (port === 53) {
          check(rule.to.every(isDnsPeer), what, "DNS only to kube-dns in kube-system");
        } else if (port === ports.silo) {
          check(rule.to.every(isSiloPeer), what, `the silo port ${port} only to silo pods`);
        } else if (port === 5432) {
          check(rule.to.every((peer) => peer.ipBlock && /\/32$/.test(peer.ipBlock.cidr) && !peer.ipBlock.except), what, "PostgreSQL only to single addresses (/32)");
        } else if (port === 443 || port === 6443) {
          check(rule.to.every((peer) => peer.ipBlock), what, `port ${port} only to address blocks (Key Vault, Entra ID, the API server)`);
        } else {
          check(false, what, `egress to port ${port} is not something Bastion needs`);
        }
      }
    }
  }
  const allowed = (labels, direction, port) => policies.some((p) =>
    matchesSelector(p.spec.podSelector, labels) && (p.spec[direction] ?? []).some((rule) => rule.ports?.some((x) => x.port === port)));
  for (const [roleName, deployment] of roles) {
    const labels = deployment.spec.template.metadata.labels;
    const what = `network policies of the ${roleName} silos`;
    for (const [direction, port, purpose] of [["ingress", ports.silo, "silo port in"], ["egress", ports.silo, "silo port out"], ["ingress", ports.gateway, "gateway"],
      ["ingress", ports.metrics, "metrics"], ["egress", 53, "DNS"], ["egress", 5432, "PostgreSQL"], ["egress", 443, "Key Vault and the API server"]]) {
      check(allowed(labels, direction, port), what, `must allow ${purpose} (${direction} ${port})`);
    }
    check(allowed(labels, "ingress", ports.https) === (roleName === "api"), what, roleName === "api" ? "must allow HTTPS from the ingress" : "must not open HTTPS (only the kubelet probes it)");
  }
  if (migrate) {
    const labels = migrate.spec.template.metadata.labels;
    check(allowed(labels, "egress", 5432) && allowed(labels, "egress", 53), "network policies of the migration Job", "must allow DNS and PostgreSQL");
    check(!policies.some((p) => matchesSelector(p.spec.podSelector, labels) && (p.spec.ingress ?? []).length > 0), "network policies of the migration Job", "must allow no ingress");
  }

  // Secrets: none in the manifests, files only from Key Vault.
  check(all("Secret").length === 0, "Secrets", "no Secret object: secrets come from Key Vault through the CSI driver");
  for (const spc of secretProviderClasses) {
    const what = `SecretProviderClass ${spc.metadata.name}`;
    const parameters = spc.spec.parameters ?? {};
    check(spc.spec.provider === "azure", what, "provider must be azure");
    check(!spc.spec.secretObjects, what, "must not sync into Kubernetes Secrets: files only");
    check(parameters.usePodIdentity === "false" && parameters.useVMManagedIdentity === "false" && parameters.clientID, what, "must use workload identity (clientID; no pod identity, no VM identity)");
    const aliases = azureObjects(spc).map((entry) => entry.objectAlias ?? entry.objectName);
    check(new Set(aliases).size === aliases.length, what, "two objects would be written to the same file");
  }
  for (const { object, file } of items) {
    const strings = [];
    const collect = (value) => {
      if (typeof value === "string") {
        strings.push(value);
      } else if (value && typeof value === "object") {
        for (const [key, item] of Object.entries(value)) {
          strings.push(key);
          collect(item);
        }
      }
    };
    collect(object);
    for (const [pattern, description] of SECRET_PATTERNS) {
      check(!strings.some((s) => pattern.test(s)), `${file}: ${object.kind} ${object.metadata?.name}`, `holds ${description}`);
    }
  }

  for (const problem of problems) {
    fail(name, problem);
  }
  return problems.length === 0;
}

// ---------------------------------------------------------------------------------------------------------------------

function kustomizations(directory) {
  const found = [];
  for (const entry of fs.readdirSync(directory, { withFileTypes: true })) {
    const full = path.join(directory, entry.name);
    if (entry.isDirectory() && entry.name !== "node_modules" && entry.name !== "validate") {
      found.push(...kustomizations(full));
    } else if (entry.name === "kustomization.yaml") {
      found.push(directory);
    }
  }
  return found;
}

function yamlFiles(directory) {
  return fs.readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(directory, entry.name);
    if (entry.isDirectory()) {
      return entry.name === "node_modules" || entry.name === "validate" ? [] : yamlFiles(full);
    }
    return /\.ya?ml$/.test(entry.name) ? [full] : [];
  });
}

const used = new Set();
const builds = kustomizations(root).sort();
if (builds.length === 0) {
  fail(rel(root), "no kustomization.yaml found");
}
for (const directory of builds) {
  const name = `kustomization ${rel(directory)}`;
  const before = failures.length;
  const items = build(directory, used);
  const checked = await checkSchema(items, name);
  if (failures.length === before) {
    pass(`${name}: ${checked} objects match the Kubernetes schema (kubernetes-models ${JSON.parse(fs.readFileSync(path.join(nodeModules, "kubernetes-models", "package.json"))).version}, no unknown fields) or the SecretProviderClass schema`);
  }
  if (checkPolicy(items, name)) {
    pass(`${name}: Bastion's rules hold (restricted pods, PDBs, probes, drain, Orleans, network policies, RBAC, CSI files, autoscaling, no secrets)`);
  }
}
for (const file of yamlFiles(root)) {
  if (!used.has(file)) {
    fail(rel(file), "is in no kustomization, so nothing applies or checks it");
  }
}

for (const line of passes) {
  console.log(`ok    ${line}`);
}
for (const line of failures) {
  console.log(`FAIL  ${line}`);
}
console.log(failures.length === 0 ? `passed: ${passes.length} checks` : `failed: ${failures.length} problem(s)`);
process.exit(failures.length === 0 ? 0 : 1);
