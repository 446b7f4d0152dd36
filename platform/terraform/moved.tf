# Resource addresses that changed, so that a plan over an environment built before the change
# moves each resource in the state instead of destroying and re-creating it (live instances,
# ASGs and templates keep their identity). The launch templates of the masters, the worker pool
# and the bastion, once a resource of each of those modules, are now the one launch template
# module per kind of node (main.tf); the bastion's ASG kept its address (module.bastion is now
# an instance of modules/workers). Keep these blocks until every environment has applied a
# plan with them: removing one later makes terraform plan a destroy/create for any environment
# still on older state.
# https://developer.hashicorp.com/terraform/language/modules/develop/refactoring

moved {
  from = module.masters.aws_launch_template.this
  to   = module.launch_template["masters"].aws_launch_template.this
}

moved {
  from = module.workers.aws_launch_template.this
  to   = module.launch_template["workers"].aws_launch_template.this
}

moved {
  from = module.bastion.aws_launch_template.this
  to   = module.launch_template["bastion"].aws_launch_template.this
}
