/** INTRODUCE, RELEASE, RESUME, SET_TARGET, GET_DOMAIN_PATH, IS_DOMAIN_INTRODUCED. */
import {
  introduce as introduceDomain, isIntroduced, parseDomid, release as releaseDomain, releaseIsDeferred, resume as resumeDomain, setTarget as setDomainTarget,
} from '../../store/domain-ops.js';
import { fail } from '../../store/errors.js';
import { holdEvents } from '../../store/events.js';
import { atoi } from '../../store/numbers.js';
import type { HandlerRequest } from '../handler.js';
import { cString, oneArg, strings } from '../payload.js';
import { data, OK, type Reply } from '../reply.js';

export function introduce(r: HandlerRequest): Reply {
  const args = strings(r.payload);
  if (args.length < 3) fail('EINVAL', 'INTRODUCE takes domid, gfn and event channel');
  const domid = parseDomid(r.store, args[0]);
  introduceDomain(r.store, r.services, domid, atoi(args[2]!) >>> 0);
  return OK;
}

export function release(r: HandlerRequest): Reply {
  const domid = parseDomid(r.store, oneArg(r.payload));
  if (!releaseIsDeferred(r.store, r.client, domid)) {
    releaseDomain(r.store, r.services, domid);
    return OK;
  }
  const send = holdEvents(r.store, () => releaseDomain(r.store, r.services, domid));
  return { ...OK, after: send };
}

export function resume(r: HandlerRequest): Reply {
  resumeDomain(r.store, parseDomid(r.store, oneArg(r.payload)));
  return OK;
}

export function setTarget(r: HandlerRequest): Reply {
  const args = strings(r.payload);
  if (args.length < 2) fail('EINVAL', 'SET_TARGET takes two domids');
  setDomainTarget(r.store, parseDomid(r.store, args[0]), parseDomid(r.store, args[1]));
  return OK;
}

export function getDomainPath(r: HandlerRequest): Reply {
  return data(cString(`/local/domain/${parseDomid(r.store, oneArg(r.payload))}`));
}

export function isDomainIntroduced(r: HandlerRequest): Reply {
  return data(cString(isIntroduced(r.store, parseDomid(r.store, oneArg(r.payload))) ? 'T' : 'F'));
}

