/**
 * Normalized snapshots for parity tests: what a user of a controller can observe (objects,
 * conditions, field managers, events) with everything that differs between two runs by
 * nature (uids, timestamps, resourceVersions, counts) left out.
 */
import type { KubeObject, Service, ServiceCIDR } from '../../lib/api/index.js';
import type { ResourceClient } from '../../lib/client/index.js';

export interface ParityClient {
  cidrs: ResourceClient<ServiceCIDR>;
  services: ResourceClient<Service>;
  coreEvents: ResourceClient<KubeObject>;
  events: ResourceClient<KubeObject>;
}

export interface ManagerEntry {
  manager: string;
  operation: string;
  subresource: string;
  /** Top-level fields this manager owns, e.g. ["f:metadata.f:finalizers", "f:status"]. */
  fields: string[];
}

export interface ServiceCIDRView {
  name: string;
  cidrs: string[];
  finalizers: string[];
  conditions: { type: string; status: string; reason: string; message: string }[];
  managers: ManagerEntry[];
}

export interface EventView {
  api: 'v1' | 'events.k8s.io/v1';
  type: string;
  reason: string;
  note: string;
  regarding: string;
}

export interface Snapshot {
  serviceCIDRs: ServiceCIDRView[];
  events: EventView[];
}

interface RawManagedField {
  manager?: string;
  operation?: string;
  subresource?: string;
  fieldsV1?: Record<string, unknown>;
}

/** Owned paths reduced to what matters here: status, and metadata down to one level. */
function ownedFields(fieldsV1: Record<string, unknown> | undefined): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(fieldsV1 ?? {})) {
    if (key === 'f:metadata' && value && typeof value === 'object') {
      for (const sub of Object.keys(value)) out.push(`${key}.${sub}`);
    } else {
      out.push(key);
    }
  }
  return out.sort();
}

function viewServiceCIDR(sc: ServiceCIDR): ServiceCIDRView {
  const managed = (sc.metadata.managedFields ?? []) as RawManagedField[];
  return {
    name: sc.metadata.name ?? '',
    cidrs: sc.spec?.cidrs ?? [],
    finalizers: [...(sc.metadata.finalizers ?? [])].sort(),
    conditions: (sc.status?.conditions ?? []).map((c) => ({
      type: c.type,
      status: c.status,
      reason: c.reason ?? '',
      message: c.message ?? '',
    })),
    managers: managed
      .map((m) => ({
        manager: m.manager ?? '',
        operation: m.operation ?? '',
        subresource: m.subresource ?? '',
        fields: ownedFields(m.fieldsV1),
      }))
      .sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y))),
  };
}

type RawEvent = KubeObject & Record<string, unknown>;

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function obj(v: unknown): Record<string, unknown> {
  return v && typeof v === 'object' ? (v as Record<string, unknown>) : {};
}

/** Who reported an event, whichever API and field it used. */
export function eventReporter(e: RawEvent): string {
  return (
    str(e.reportingController) || str(e.reportingComponent) || str(obj(e.source).component) || str(e.source)
  );
}

function viewEvent(api: EventView['api'], e: RawEvent): EventView {
  const regarding = obj(api === 'v1' ? e.involvedObject : e.regarding);
  return {
    api,
    type: str(e.type),
    reason: str(e.reason),
    note: str(api === 'v1' ? e.message : e.note),
    regarding: `${str(regarding.kind)}/${str(regarding.name)}`,
  };
}

/**
 * Every event in the cluster from both APIs (the same event shows up in both), with who
 * reported it; used to choose the filter and to explain a mismatch.
 */
export async function allEvents(c: ParityClient): Promise<(EventView & { reporter: string })[]> {
  const core = await c.coreEvents.list();
  const modern = await c.events.list();
  return [
    ...core.items.map((e) => ({ ...viewEvent('v1', e as RawEvent), reporter: eventReporter(e as RawEvent) })),
    ...modern.items.map((e) => ({
      ...viewEvent('events.k8s.io/v1', e as RawEvent),
      reporter: eventReporter(e as RawEvent),
    })),
  ];
}

export async function snapshot(c: ParityClient, controller: string): Promise<Snapshot> {
  const cidrs = await c.cidrs.list();
  const events = (await allEvents(c))
    .filter((e) => e.reporter === controller)
    .map(({ reporter: _reporter, ...e }) => e);
  const unique = [...new Map(events.map((e) => [JSON.stringify(e), e])).values()].sort((x, y) =>
    JSON.stringify(x).localeCompare(JSON.stringify(y)),
  );
  return {
    serviceCIDRs: cidrs.items.map(viewServiceCIDR).sort((x, y) => x.name.localeCompare(y.name)),
    events: unique,
  };
}

/**
 * The snapshot with one field manager renamed. Managers of Update operations are named after
 * the writer's User-Agent, so the controller-manager binary's own name shows up there.
 */
export function renameManager(s: Snapshot, from: string, to: string): Snapshot {
  return {
    ...s,
    serviceCIDRs: s.serviceCIDRs.map((sc) => ({
      ...sc,
      managers: sc.managers
        .map((m) => (m.manager === from ? { ...m, manager: to } : m))
        .sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y))),
    })),
  };
}

/** Every (manager, operation, subresource, fields) seen across a snapshot's ServiceCIDRs. */
export function managersOf(s: Snapshot): string[] {
  const all = s.serviceCIDRs.flatMap((sc) =>
    sc.managers.map(
      (m) => `${sc.name}: ${m.manager} ${m.operation} ${m.subresource} [${m.fields.join(' ')}]`,
    ),
  );
  return [...new Set(all)].sort();
}
