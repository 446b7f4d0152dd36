import type { PlannedResource } from '../../src/policy/plan-json.js';
import { classifyUpgradePlan } from '../../src/upgrade/terraform-change.js';

/**
 * The upgrade's Terraform step (src/upgrade/terraform-change.ts): which changes of a plan at
 * the target versions it applies. The shapes are those of `terraform show -json`
 * (resource_changes[].change: before, after with unknown values absent, after_unknown)
 * for platform/terraform's launch templates and ASGs; the integration test
 * (run-e2e.test.ts) runs the real plan.
 */

const lt = (id: string, version?: string) => [{ id, name: `e-${id}`, ...(version ? { version } : {}) }];
// as provider 5.100.0 plans it against the local AWS: an unset string planned as "" over null
const asgBefore = {
  name: 'e-compute',
  max_size: 10,
  min_size: 0,
  capacity_reservation_specification: [
    { capacity_reservation_preference: null, capacity_reservation_target: [] },
  ],
  launch_template: lt('lt-1', '3'),
};

function res(
  over: Partial<PlannedResource> & Pick<PlannedResource, 'address' | 'type' | 'actions'>,
): PlannedResource {
  return { after: null, before: null, afterUnknown: {}, ...over };
}

const template = res({
  address: 'module.launch_template["workers"].aws_launch_template.this',
  type: 'aws_launch_template',
  actions: ['update'],
  before: { user_data: 'old', latest_version: 3 },
  after: { user_data: 'new' },
  afterUnknown: { latest_version: true },
});
const asgVersionOnly = res({
  address: 'module.workers.aws_autoscaling_group.this',
  type: 'aws_autoscaling_group',
  actions: ['update'],
  before: asgBefore,
  after: {
    ...asgBefore,
    capacity_reservation_specification: [
      { capacity_reservation_preference: '', capacity_reservation_target: [] },
    ],
    launch_template: lt('lt-1'),
  },
  afterUnknown: {
    launch_template: [{ version: true }],
    tag: [{}, {}],
    availability_zones: [false, false],
    capacity_reservation_specification: [{ capacity_reservation_target: [] }],
  },
});

test.each<[string, PlannedResource[], string[]]>([
  ['a template update and its ASG’s version: applied', [template, asgVersionOnly], []],
  [
    'no-op and read resources are neither',
    [res({ address: 'data.aws_ami.node', type: 'aws_ami', actions: ['read'] }), template],
    [],
  ],
  [
    'an ASG whose max_size changes too',
    [template, { ...asgVersionOnly, after: { ...asgBefore, max_size: 11, launch_template: lt('lt-1') } }],
    ['module.workers.aws_autoscaling_group.this'],
  ],
  [
    'an ASG whose name changes too',
    [template, { ...asgVersionOnly, after: { ...asgVersionOnly.after, name: 'e-other' } }],
    ['module.workers.aws_autoscaling_group.this'],
  ],
  [
    'an ASG moved to another template',
    [template, { ...asgVersionOnly, after: { ...asgBefore, launch_template: lt('lt-2') } }],
    ['module.workers.aws_autoscaling_group.this'],
  ],
  [
    'an ASG with another attribute unknown after the apply',
    [
      template,
      {
        ...asgVersionOnly,
        after: { name: 'e-compute', min_size: 0, launch_template: lt('lt-1') },
        afterUnknown: { launch_template: [{ version: true }], max_size: true },
      },
    ],
    ['module.workers.aws_autoscaling_group.this'],
  ],
  ['a template replaced', [{ ...template, actions: ['delete', 'create'] }], [template.address]],
  [
    'any other resource',
    [
      template,
      res({ address: 'module.network.aws_subnet.this["a"]', type: 'aws_subnet', actions: ['update'] }),
    ],
    ['module.network.aws_subnet.this["a"]'],
  ],
])('%s', (_, resources, refused) => {
  const { changed, other } = classifyUpgradePlan(resources);
  expect(other.map((r) => r.address)).toEqual(refused);
  expect(changed.map((r) => r.address)).toEqual(
    resources.filter((r) => r.actions.some((a) => a !== 'read' && a !== 'no-op')).map((r) => r.address),
  );
});
