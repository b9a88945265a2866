output "function_name" {
  value = tencentcloud_scf_function.clb_ingress.name
}

output "execution_role" {
  value = tencentcloud_cam_role.function.name
}
