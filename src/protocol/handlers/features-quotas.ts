/** GET_FEATURE, SET_FEATURE, GET_QUOTA, SET_QUOTA (master only). */
import { parseDomid } from '../../store/domain-ops.js';
import type { Domain } from '../../store/domains.js';
import { fail } from '../../store/errors.js';
import { atoi } from '../../store/numbers.js';
import { isQuotaName, QUOTA_NAMES, type QuotaName } from '../../store/quotas.js';
import type { Store } from '../../store/store.js';
import type { HandlerRequest } from '../handler.js';
import { cString, strings } from '../payload.js';
import { data, OK, type Reply } from '../reply.js';
import { SUPPORTED_FEATURES } from '../../wire/vocabulary.js';

/** A domain xenstored knows or the hypervisor has; ENOENT otherwise. */
function knownDomain(store: Store, text: string | undefined): Domain {
  const domid = parseDomid(store, text);
  return store.existingDomainObject(domid) ?? fail('ENOENT', `unknown domain ${domid}`);
}

export function getFeature(r: HandlerRequest): Reply {
  const args = strings(r.payload);
  if (args.length === 0) return data(cString(String(r.client.domain?.features ?? SUPPORTED_FEATURES)));
  if (!r.client.privileged) fail('EACCES');
  if (args.length > 1) fail('EINVAL', 'GET_FEATURE takes at most a domid');
  return data(cString(String(knownDomain(r.store, args[0]).features)));
}

export function setFeature(r: HandlerRequest): Reply {
  const args = strings(r.payload);
  if (args.length !== 2) fail('EINVAL', 'SET_FEATURE takes a domid and a value');
  const domain = knownDomain(r.store, args[0]);
  if (domain.introduced) fail('EBUSY', 'domain already introduced');
  const value = atoi(args[1]!) >>> 0;
  if (value & ~SUPPORTED_FEATURES) fail('EINVAL', 'unsupported feature bits');
  domain.features = value;
  return OK;
}

/** Quota names as GET_QUOTA lists them: hard ones, then `soft-memory` after memory. */
const QUOTA_LIST = QUOTA_NAMES.flatMap((n) => (n === 'memory' ? [n, 'soft-memory'] : [n]));

function quotaName(text: string): QuotaName | 'soft-memory' {
  if (text === 'soft-memory' || isQuotaName(text)) return text;
  return fail('EINVAL', `unknown quota ${text}`);
}

export function getQuota(r: HandlerRequest): Reply {
  const args = strings(r.payload);
  if (args.length === 0) return data(cString(QUOTA_LIST.join(' ')));
  if (args.length > 2) fail('EINVAL', 'GET_QUOTA takes at most a domid and a name');
  const domain = args.length === 2 ? knownDomain(r.store, args[0]) : undefined;
  const name = quotaName(args[args.length - 1]!);
  const value = name === 'soft-memory' ? r.store.softMemory : (domain ? domain.quotas : r.store.quotas)[name];
  return data(cString(String(value)));
}

export function setQuota(r: HandlerRequest): Reply {
  const args = strings(r.payload);
  if (args.length !== 2 && args.length !== 3) fail('EINVAL', 'SET_QUOTA takes [domid] name value');
  const domain = args.length === 3 ? knownDomain(r.store, args[0]) : undefined;
  const name = quotaName(args[args.length - 2]!);
  const value = atoi(args[args.length - 1]!) >>> 0;
  if (value === 0xffffffff) fail('EINVAL', 'bad quota value');
  if (name === 'soft-memory') r.store.softMemory = value;
  else (domain ? domain.quotas : r.store.quotas)[name] = value;
  return OK;
}
