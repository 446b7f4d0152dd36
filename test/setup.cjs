// The image ships a current LTS; on Node 20 the AWS SDK's support notice is only noise.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
